"""Reads for organizations and memberships, always scoped to the caller."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission

from orgs.models import Membership, MembershipQuerySet, Organization, OrganizationQuerySet

User = AbstractBaseUser | AnonymousUser


def organization_list(*, user: User) -> OrganizationQuerySet:
    return Organization.objects.visible_to(user).order_by("id")


def membership_get(*, user: User, organization_id: int) -> Membership | None:
    """The caller's own membership in an organization, or None for an outsider."""
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("group")
        .filter(user=user, organization_id=organization_id)
        .first()
    )


def membership_list(*, user: User, organization_id: int) -> MembershipQuerySet:
    return (
        Membership.objects.visible_to(user)
        .filter(organization_id=organization_id)
        .select_related("user", "group")
        .order_by("user_id")
    )


def organization_permissions(*, user: User, organization_id: int) -> frozenset[str]:
    """The `app_label.codename` permissions that the caller's role grants in an organization.

    Empty for an outsider. The role's `Group` carries the permissions, so an operator who
    edits a group in the admin changes what that role may do everywhere.
    """
    if not user.is_authenticated:
        return frozenset()
    rows = Permission.objects.filter(
        group__memberships__user=user, group__memberships__organization_id=organization_id
    ).values_list("content_type__app_label", "codename")
    return frozenset(f"{app}.{codename}" for app, codename in rows)
