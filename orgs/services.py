"""Writes for organizations and memberships."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from hypervisor.exceptions import Conflict
from orgs.models import Membership, Organization, Role, new_invite_code


class LastOwnerError(Conflict):
    """An organization must keep at least one owner."""


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
    from clusters.services import cluster_ensure_idle

    with transaction.atomic():
        # FOR UPDATE in pk order: also holds off new deployments on these clusters.
        for cluster in organization.clusters.select_for_update().order_by("pk"):
            cluster_ensure_idle(cluster=cluster)
        organization.delete()


def _ensure_keeps_an_owner(*, target: Membership, new_role: Role | None) -> None:
    """Refuse a change that would leave the target's organization without an owner.

    Locks the target's row and the organization's owner rows, in pk order, so that two
    concurrent demotions cannot both pass. It decides on the locked rows rather than on
    `target` as the caller read it, which a concurrent promotion may have made stale.
    The query filters on `group_id`, without joining `auth_group`: FOR UPDATE would lock
    the joined rows too, and the owner group's row is shared by every organization.
    """
    if new_role == Role.OWNER:
        return
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
    owners = [pk for pk, group_id in locked.items() if group_id == owner_group_id]
    if owners == [target.pk]:
        raise LastOwnerError("An organization must keep at least one owner.")


def membership_change_role(*, target: Membership, role: Role) -> Membership:
    """Give a member another role; the organization keeps at least one owner."""
    with transaction.atomic():
        _ensure_keeps_an_owner(target=target, new_role=role)
        target.group = _role_group(role)
        target.save(update_fields=["group"])
    return target


def membership_remove(*, target: Membership) -> None:
    """Remove a member; the organization keeps at least one owner."""
    with transaction.atomic():
        _ensure_keeps_an_owner(target=target, new_role=None)
        target.delete()
