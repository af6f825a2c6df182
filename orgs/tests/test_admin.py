"""The operators' admin for organizations and memberships: writes through
`orgs.services` (so an organization keeps an owner), no query per row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.tests.factories import DeploymentFactory
from orgs.models import Membership, Organization, Role
from orgs.tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

ORGS = reverse("admin:orgs_organization_changelist")
MEMBERSHIPS = reverse("admin:orgs_membership_changelist")


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


def populate(count: int) -> None:
    for _ in range(count):
        organization = OrganizationFactory()
        MembershipFactory(organization=organization, role=Role.OWNER)
        MembershipFactory(organization=organization, role=Role.VIEWER)
        ClusterFactory(organization=organization)


def test_changelists_queries_do_not_grow_with_rows(operator):
    populate(3)
    few_orgs, few_members = queries(operator, ORGS), queries(operator, MEMBERSHIPS)
    populate(27)
    assert queries(operator, ORGS) == few_orgs
    assert queries(operator, MEMBERSHIPS) == few_members
    assert queries(operator, f"{MEMBERSHIPS}?role=viewer&q=user") == few_members


def test_membership_list_shows_roles_and_filters_by_role(operator, organization, owner, viewer):
    body = operator.get(f"{MEMBERSHIPS}?role=viewer").content.decode()
    assert viewer.username in body and owner.username not in body
    assert '<td class="field-role">Viewer</td>' in body


def test_organization_page_lists_members_read_only(operator, organization, owner, viewer):
    body = operator.get(reverse("admin:orgs_organization_change", args=[organization.pk])).content
    body = body.decode()
    assert owner.username in body and viewer.username in body and "Owner" in body
    assert organization.invite_code in body


def test_rotate_invite_code_action(operator, organization):
    old = organization.invite_code
    operator.post(ORGS, {"action": "rotate_invite_code", "_selected_action": [organization.pk]})
    organization.refresh_from_db()
    assert organization.invite_code != old


def test_add_organization_makes_its_first_owner(operator):
    owner = UserFactory()
    response = operator.post(
        reverse("admin:orgs_organization_add"), {"name": "Acme", "owner": owner.username}
    )
    assert response.status_code == 302
    organization = Organization.objects.get(name="Acme")
    assert Membership.objects.get(organization=organization).user == owner
    assert Membership.objects.get(organization=organization).role == Role.OWNER
    unknown = operator.post(
        reverse("admin:orgs_organization_add"), {"name": "Nope", "owner": "nobody"}
    )
    assert "No user with this username." in unknown.content.decode()


def test_deleting_an_organization_with_work_is_refused(operator, organization):
    DeploymentFactory(cluster=ClusterFactory(organization=organization))
    url = reverse("admin:orgs_organization_delete", args=[organization.pk])
    response = operator.post(url, {"post": "yes"}, follow=True)
    assert "still has 1 running or waiting deployment(s)" in response.content.decode()
    assert Organization.objects.filter(pk=organization.pk).exists()


def membership_url(membership: Membership, action: str = "change") -> str:
    return reverse(f"admin:orgs_membership_{action}", args=[membership.pk])


def test_change_role_goes_through_the_service(operator, organization, developer):
    membership = Membership.objects.get(user=developer, organization=organization)
    response = operator.post(membership_url(membership), {"role": "admin"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_the_last_owner_cannot_be_demoted_or_removed(operator, organization, owner):
    membership = Membership.objects.get(user=owner, organization=organization)
    response = operator.post(membership_url(membership), {"role": "viewer"})
    assert "must keep at least one owner" in response.content.decode()
    response = operator.post(membership_url(membership, "delete"), {"post": "yes"}, follow=True)
    assert "must keep at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_memberships_are_not_added_by_hand(operator):
    assert operator.get(reverse("admin:orgs_membership_add")).status_code == 403
