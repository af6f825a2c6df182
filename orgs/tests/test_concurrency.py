"""Races on memberships, on real PostgreSQL with real threads (each closes its connection)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import OperationalError, connection, transaction

from accounts.tests.factories import UserFactory
from conftest import client_for
from orgs import services
from orgs.models import Membership, Role
from orgs.tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 10


def _run_together(*calls: Callable[[], object]) -> list[object]:
    """Run each call in its own thread, released at the same moment; results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as error:  # the main thread asserts on it
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_owners_demoting_each_other_leave_one_owner():
    """Both requests passed their permission checks; the last-owner check under the
    owners' row locks lets exactly one demotion through."""
    for _ in range(ROUNDS):
        organization = OrganizationFactory()
        first = MembershipFactory(organization=organization, role=Role.OWNER)
        second = MembershipFactory(organization=organization, role=Role.OWNER)

        results = _run_together(
            lambda a=first: services.membership_change_role(
                target=a, role=Role.DEVELOPER, may_touch_owners=True
            ),
            lambda b=second: services.membership_change_role(
                target=b, role=Role.DEVELOPER, may_touch_owners=True
            ),
        )

        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1 and isinstance(errors[0], services.LastOwnerError), results
        assert Membership.objects.owners().filter(organization=organization).count() == 1


def _demote(actor, organization, target) -> Callable[[], int]:
    url = f"/api/v1/organizations/{organization.pk}/members/{target.pk}"
    return lambda: client_for(actor).patch(url, {"role": "developer"}, format="json").status_code


def test_two_owners_demoting_each_other_through_the_api_leave_one_owner():
    for _ in range(ROUNDS // 2):
        organization = OrganizationFactory()
        first = MembershipFactory(organization=organization, role=Role.OWNER).user
        second = MembershipFactory(organization=organization, role=Role.OWNER).user

        statuses = _run_together(
            _demote(first, organization, second), _demote(second, organization, first)
        )

        # The loser is refused by the last-owner check (409) or, when the winner's
        # demotion committed before its permission check, as a mere developer (403).
        assert sorted(statuses) in ([200, 403], [200, 409]), statuses
        assert Membership.objects.owners().filter(organization=organization).count() == 1


def test_owners_leaving_together_leave_one_owner():
    organization = OrganizationFactory()
    owners = [MembershipFactory(organization=organization, role=Role.OWNER).user for _ in range(3)]

    def leave(user) -> Callable[[], int]:
        url = f"/api/v1/organizations/{organization.pk}/members/{user.pk}"
        return lambda: client_for(user).delete(url).status_code

    statuses = _run_together(*(leave(user) for user in owners))

    assert sorted(statuses) == [204, 204, 409], statuses
    assert Membership.objects.owners().filter(organization=organization).count() == 1


def test_a_demotion_in_progress_does_not_hold_up_other_organizations():
    """The last-owner check locks this organization's owner rows, nothing shared: an
    owner change elsewhere (here, creating an organization) must not wait for it."""
    busy = OrganizationFactory()
    MembershipFactory(organization=busy, role=Role.OWNER)
    demoted = MembershipFactory(organization=busy, role=Role.OWNER)
    founder = UserFactory()
    locked, release = threading.Event(), threading.Event()

    def hold_a_demotion_open() -> None:
        try:
            with transaction.atomic():
                services.membership_change_role(
                    target=demoted, role=Role.ADMIN, may_touch_owners=True
                )
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_a_demotion_open)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '1s'")
            services.organization_create(actor=founder, name="elsewhere")
    except OperationalError as error:
        pytest.fail(f"blocked by a demotion in another organization: {error}")
    finally:
        release.set()
        holder.join(timeout=10)
    assert Membership.objects.owners().filter(user=founder).count() == 1


def test_of_three_owners_two_demoting_each_other_do_not_both_succeed():
    """Issue 16, finding 9: the caller's own role was checked before the row locks and not
    again under them, so A demoted B while B, already demoted, demoted A (28 of 30)."""
    outcomes = []
    for _ in range(ROUNDS):
        organization = OrganizationFactory()
        first = MembershipFactory(organization=organization, role=Role.OWNER).user
        second = MembershipFactory(organization=organization, role=Role.OWNER).user
        MembershipFactory(organization=organization, role=Role.OWNER)

        statuses = _run_together(
            _demote(first, organization, second), _demote(second, organization, first)
        )

        outcomes.append(sorted(statuses))
        assert Membership.objects.owners().filter(organization=organization).count() == 2
    assert all(statuses == [200, 403] for statuses in outcomes), outcomes
