"""Membership services on their own: the last-owner rule on fresh data."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from orgs import services
from orgs.models import Membership, Role
from orgs.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_last_owner_rule_uses_the_current_role_not_a_stale_read(organization, change):
    """A request read its target as a developer; before it acts, the target became an
    owner and the other owner left. The target is now the last owner: refuse."""
    first_owner = MembershipFactory(organization=organization, role=Role.OWNER)
    target = MembershipFactory(organization=organization, role=Role.DEVELOPER)
    stale = Membership.objects.select_related("group").get(pk=target.pk)
    services.membership_change_role(target=target, role=Role.OWNER, may_touch_owners=True)
    services.membership_remove(target=first_owner, may_touch_owners=True)

    with pytest.raises(services.LastOwnerError):
        if change == "demote":
            services.membership_change_role(target=stale, role=Role.VIEWER, may_touch_owners=True)
        else:
            services.membership_remove(target=stale, may_touch_owners=True)

    assert list(Membership.objects.owners().filter(organization=organization)) == [target]


def test_changing_a_member_who_left_meanwhile_is_not_found(organization):
    MembershipFactory(organization=organization, role=Role.OWNER)
    target = MembershipFactory(organization=organization, role=Role.DEVELOPER)
    stale = Membership.objects.select_related("group").get(pk=target.pk)
    services.membership_remove(target=target, may_touch_owners=True)

    with pytest.raises(Membership.DoesNotExist):
        services.membership_change_role(target=stale, role=Role.VIEWER, may_touch_owners=True)

    assert not Membership.objects.filter(pk=target.pk).exists()


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_an_admin_cannot_touch_a_member_promoted_to_owner_meanwhile(organization, change):
    """The view saw a developer, so an admin may act; under the lock the target is an
    owner now, which only owners may change."""
    MembershipFactory(organization=organization, role=Role.OWNER)
    target = MembershipFactory(organization=organization, role=Role.DEVELOPER)
    stale = Membership.objects.select_related("group").get(pk=target.pk)
    services.membership_change_role(target=target, role=Role.OWNER, may_touch_owners=True)

    with pytest.raises(PermissionDenied):
        if change == "demote":
            services.membership_change_role(target=stale, role=Role.VIEWER, may_touch_owners=False)
        else:
            services.membership_remove(target=stale, may_touch_owners=False)

    assert Membership.objects.get(pk=target.pk).role == Role.OWNER
