"""Reads for organizations and memberships, always scoped to the caller."""

from __future__ import annotations

import time

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission
from django.db import connection

from orgs.models import Membership, MembershipQuerySet, Organization, OrganizationQuerySet, Role

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


def member_role_change_allowed(
    *, permissions: frozenset[str], target: Membership, role: Role
) -> bool:
    """The roles matrix, to show a caller what they may do: owners change anyone's role,
    admins anyone's up to admin. `membership_change_role` checks it again under its
    locks, from the caller's role as it is then."""
    if "orgs.change_membership" not in permissions:
        return False
    return Role.OWNER not in (role, target.role) or "orgs.assign_owner" in permissions


def member_removal_allowed(
    *, permissions: frozenset[str], actor: AbstractBaseUser, target: Membership
) -> bool:
    """Any member may leave; owners remove anyone, admins anyone up to admin (and
    `membership_remove` checks it again under its locks)."""
    if target.user_id == actor.pk:
        return True
    if "orgs.delete_membership" not in permissions:
        return False
    return target.role != Role.OWNER or "orgs.assign_owner" in permissions


def organization_permissions(*, user: User, organization_id: int) -> frozenset[str]:
    """The `app_label.codename` permissions that the caller's role grants in an organization.

    Empty for an outsider. The role's `Group` carries the permissions, so an operator who
    edits a group in the admin changes what that role may do everywhere. One indexed
    query for the membership's group; the group's permissions come from `role_permissions`.
    """
    if not user.is_authenticated:
        return frozenset()
    group_id = (
        Membership.objects.filter(user=user, organization_id=organization_id)
        .values_list("group_id", flat=True)
        .first()
    )
    return frozenset() if group_id is None else role_permissions(group_id=group_id)


# A role's permissions change only when an operator edits its group: keep them in the
# process, keyed by group id, as (monotonic expiry, permissions). This process forgets
# them on every edit it makes (`forget_role_permissions`, on `m2m_changed`); an edit made
# by another process is seen here within ROLE_PERMISSIONS_TTL_SECONDS (docs/operations.md).
ROLE_PERMISSIONS_TTL_SECONDS = 10.0
_role_permissions: dict[int, tuple[float, frozenset[str]]] = {}


def role_permissions(*, group_id: int) -> frozenset[str]:
    """The `app_label.codename` permissions of a role's group, cached in the process."""
    cached = _role_permissions.get(group_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    rows = Permission.objects.filter(group__id=group_id).values_list(
        "content_type__app_label", "codename"
    )
    permissions = frozenset(f"{app}.{codename}" for app, codename in rows)
    # Inside a transaction the read may see that transaction's own uncommitted edit of
    # the group, which a rollback would undo: only committed state is kept.
    if not connection.in_atomic_block:
        _role_permissions[group_id] = (time.monotonic() + ROLE_PERMISSIONS_TTL_SECONDS, permissions)
    return permissions


def forget_role_permissions() -> None:
    """Drop every cached role; the next check reads the groups again."""
    _role_permissions.clear()
