"""Writes for organizations and memberships."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from hypervisor.exceptions import Conflict
from orgs.models import FormerMembership, Membership, Organization, Role, new_invite_code
from orgs.selectors import role_permissions


class LastOwnerError(Conflict):
    """An organization must keep at least one owner."""

    code = "last_owner"


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


# Roles from least to most power: joining again gives at most what one had on leaving.
_ROLE_RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def organization_join(*, actor: AbstractBaseUser, invite_code: str) -> Membership:
    """Join by invite code as a developer; joining twice keeps the existing role, and
    someone who left (or was removed) comes back with at most the role they had then."""
    organization = Organization.objects.filter(invite_code=invite_code).first()
    if organization is None:
        raise ValidationError({"invite_code": ["Unknown invite code."]})
    role = Role.DEVELOPER
    former = (
        FormerMembership.objects.filter(user=actor, organization=organization)
        .values_list("group__name", flat=True)
        .first()
    )
    if former is not None and _ROLE_RANK[Role(former)] < _ROLE_RANK[role]:
        role = Role(former)
    membership, _created = Membership.objects.select_related("group", "organization").get_or_create(
        user=actor, organization=organization, defaults={"group": _role_group(role)}
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
    *,
    target: Membership,
    new_role: Role | None,
    may_touch_owners: bool,
    actor: AbstractBaseUser | None,
    permission: str | None,
) -> int:
    """Lock the target, the organization's owners and the actor's own membership, check
    the rules on the locked rows, and return the target's group as locked.

    Rows are locked in pk order, so two concurrent demotions cannot both pass, and the
    checks use the locked rows rather than what the caller read before, which a
    concurrent change may have made stale: the actor's role is read again here (two
    owners demoting each other at once: the second finds itself no longer an owner),
    only someone who may touch owners changes an owner (or makes one), and the
    organization keeps at least one owner. `actor` None (the admin, staff): then
    `may_touch_owners` says. The query filters on `group_id`, without joining
    `auth_group`: FOR UPDATE would lock the joined rows too, and the owner group's row
    is shared by every organization.
    """
    owner_group_id = _role_group(Role.OWNER).pk
    wanted = Q(group_id=owner_group_id) | Q(pk=target.pk)
    if actor is not None:
        wanted |= Q(user_id=actor.pk)
    locked = {
        pk: (user_id, group_id)
        for pk, user_id, group_id in Membership.objects.select_for_update()
        .filter(organization_id=target.organization_id)
        .filter(wanted)
        .order_by("pk")
        .values_list("pk", "user_id", "group_id")
    }
    if target.pk not in locked:
        raise Membership.DoesNotExist("The member is no longer in the organization.")
    if actor is not None and permission is not None:
        actor_group = next((g for u, g in locked.values() if u == actor.pk), None)
        granted = frozenset() if actor_group is None else role_permissions(group_id=actor_group)
        if permission not in granted:
            raise PermissionDenied("Your role in this organization does not allow this action.")
        may_touch_owners = "orgs.assign_owner" in granted
    target_is_owner = locked[target.pk][1] == owner_group_id
    if not may_touch_owners and (target_is_owner or new_role == Role.OWNER):
        raise PermissionDenied("Only an owner can make owners or change an owner's membership.")
    owners = [pk for pk, (_user, group_id) in locked.items() if group_id == owner_group_id]
    if target_is_owner and new_role != Role.OWNER and owners == [target.pk]:
        raise LastOwnerError("An organization must keep at least one owner.")
    return locked[target.pk][1]


def membership_change_role(
    *,
    target: Membership,
    role: Role,
    actor: AbstractBaseUser | None = None,
    may_touch_owners: bool = False,
) -> Membership:
    """Give a member another role; the organization keeps at least one owner.

    `actor`: the member asking, whose role is checked again under the locks (see
    `_lock_and_check_target`); without one, `may_touch_owners` decides (staff)."""
    with transaction.atomic():
        _lock_and_check_target(
            target=target,
            new_role=role,
            may_touch_owners=may_touch_owners,
            actor=actor,
            permission="orgs.change_membership",
        )
        target.group = _role_group(role)
        target.save(update_fields=["group"])
    return target


def membership_remove(
    *,
    target: Membership,
    actor: AbstractBaseUser | None = None,
    may_touch_owners: bool = False,
) -> None:
    """Remove a member, or let a member leave; the organization keeps at least one owner."""
    leaving = actor is not None and actor.pk == target.user_id
    with transaction.atomic():
        group_id = _lock_and_check_target(
            target=target,
            new_role=None,
            may_touch_owners=may_touch_owners or leaving,
            actor=actor,
            # Any member may leave; removing someone else takes the permission.
            permission=None if leaving else "orgs.delete_membership",
        )
        FormerMembership.objects.update_or_create(
            user_id=target.user_id,
            organization_id=target.organization_id,
            defaults={"group_id": group_id},
        )
        target.delete()
