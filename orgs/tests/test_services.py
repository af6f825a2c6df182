"""Membership services on their own: the last-owner rule on fresh data."""

from __future__ import annotations

import pytest

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
    services.membership_change_role(target=target, role=Role.OWNER)
    services.membership_remove(target=first_owner)

    with pytest.raises(services.LastOwnerError):
        if change == "demote":
            services.membership_change_role(target=stale, role=Role.VIEWER)
        else:
            services.membership_remove(target=stale)

    assert list(Membership.objects.owners().filter(organization=organization)) == [target]


def test_changing_a_member_who_left_meanwhile_is_not_found(organization):
    MembershipFactory(organization=organization, role=Role.OWNER)
    target = MembershipFactory(organization=organization, role=Role.DEVELOPER)
    stale = Membership.objects.select_related("group").get(pk=target.pk)
    services.membership_remove(target=target)

    with pytest.raises(Membership.DoesNotExist):
        services.membership_change_role(target=stale, role=Role.VIEWER)

    assert not Membership.objects.filter(pk=target.pk).exists()
