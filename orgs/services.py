"""Writes for organizations and memberships."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from hypervisor.exceptions import Conflict
from orgs.models import Membership, Organization, Role, new_invite_code


class LastOwnerError(Conflict):
    """An organization must keep at least one owner."""


# What may refuse an organization's deletion (raising a `Conflict`), under the
# transaction that deletes it: the clusters layer above fills this in
# `ClustersConfig.ready()` (no cluster may still have work), so that orgs imports
# nothing of it.
DELETE_GUARDS: list[Callable[[Organization], None]] = []


def _role_group(role: Role) -> Group:
    return Group.objects.get(name=role.value)


def organization_create(*, actor: AbstractBaseUser, name: str) -> Organization:
    """Create an organization whose creator is its first owner."""
    with transaction.atomic():
        organization = Organization.objects.create(name=name)
        Membership.objects.create(
            user=actor, organization=organization, group=_role_group(Role.OWNER)
        )
    return organization


def organization_join(*, actor: AbstractBaseUser, invite_code: str) -> Membership:
    """Join by invite code as a developer; joining twice keeps the existing role."""
    organization = Organization.objects.filter(invite_code=invite_code).first()
    if organization is None:
        raise ValidationError({"invite_code": ["Unknown invite code."]})
    membership, _created = Membership.objects.select_related("group", "organization").get_or_create(
        user=actor,
        organization=organization,
        defaults={"group": _role_group(Role.DEVELOPER)},
    )
    return membership


def organization_rotate_invite_code(*, organization: Organization) -> str:
    """Issue a new invite code; the old one stops working at once."""
    organization.invite_code = new_invite_code()
    organization.save(update_fields=["invite_code", "updated_at"])
    return organization.invite_code


def organization_delete(*, organization: Organization) -> None:
    """Delete an organization with its clusters, refusing while any of them has work."""
    with transaction.atomic():
        for guard in DELETE_GUARDS:
            guard(organization)
        organization.delete()


def _lock_and_check_target(
    *, target: Membership, new_role: Role | None, may_touch_owners: bool
) -> None:
    """Lock the target and the organization's owners, then check the owner rules.

    Rows are locked in pk order, so two concurrent demotions cannot both pass, and the
    checks use the locked rows rather than `target` as the caller read it, which a
    concurrent promotion may have made stale: only someone who may touch owners changes
    an owner (or makes one), and the organization keeps at least one owner. The query
    filters on `group_id`, without joining `auth_group`: FOR UPDATE would lock the
    joined rows too, and the owner group's row is shared by every organization.
    """
    owner_group_id = _role_group(Role.OWNER).pk
    locked = dict(
        Membership.objects.select_for_update()
        .filter(organization_id=target.organization_id)
        .filter(Q(group_id=owner_group_id) | Q(pk=target.pk))
        .order_by("pk")
        .values_list("pk", "group_id")
    )
    if target.pk not in locked:
        raise Membership.DoesNotExist("The member is no longer in the organization.")
    target_is_owner = locked[target.pk] == owner_group_id
    if not may_touch_owners and (target_is_owner or new_role == Role.OWNER):
        raise PermissionDenied("Only an owner can make owners or change an owner's membership.")
    owners = [pk for pk, group_id in locked.items() if group_id == owner_group_id]
    if target_is_owner and new_role != Role.OWNER and owners == [target.pk]:
        raise LastOwnerError("An organization must keep at least one owner.")


def membership_change_role(*, target: Membership, role: Role, may_touch_owners: bool) -> Membership:
    """Give a member another role; the organization keeps at least one owner."""
    with transaction.atomic():
        _lock_and_check_target(target=target, new_role=role, may_touch_owners=may_touch_owners)
        target.group = _role_group(role)
        target.save(update_fields=["group"])
    return target


def membership_remove(*, target: Membership, may_touch_owners: bool) -> None:
    """Remove a member; the organization keeps at least one owner."""
    with transaction.atomic():
        _lock_and_check_target(target=target, new_role=None, may_touch_owners=may_touch_owners)
        target.delete()
