"""The deployments page: the API list's selector for people, paginated, searchable,
filterable and sortable, scoped like every page (an outsider gets 404)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.models import Status
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory
from orgs.models import Role
from orgs.tests.factories import MembershipFactory
from web.selectors import DEPLOYMENTS_PER_PAGE

pytestmark = pytest.mark.django_db


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def list_url(organization) -> str:
    return reverse("web:deployment-list", args=[organization.pk])


def shown(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [int(pk) for pk in re.findall(r'<tr data-deployment="(\d+)"', response.text)]


@pytest.fixture
def cluster(organization):
    return ClusterFactory(organization=organization, name="gpu-east")


def test_lists_the_organizations_deployments_newest_first(viewer, organization, cluster):
    older = DeploymentFactory(cluster=cluster, name="older")
    newer = DeploymentFactory(cluster=cluster, name="newer")
    DeploymentFactory(name="elsewhere")  # another organization's

    response = client_as(viewer).get(list_url(organization))

    assert shown(response) == [newer.pk, older.pk]
    assert "2 deployments" in response.text


def test_every_filter_from_the_form(owner, organization, cluster, developer):
    other_cluster = ClusterFactory(organization=organization, name="cpu-west")
    etl = DeploymentFactory(cluster=cluster, name="etl", priority=10, created_by=developer)
    train = DeploymentFactory(
        cluster=cluster, name="train", image="reg.io/team/trainer:1", priority=90
    )
    running = RunningDeploymentFactory(cluster=other_cluster, name="serve", priority=50)
    page = client_as(owner)

    def ids(**params) -> list[int]:
        return sorted(shown(page.get(list_url(organization), params)))

    assert ids(search="REG.IO/team") == [train.pk]
    assert ids(cluster=other_cluster.pk) == [running.pk]
    assert ids(status=["queued"]) == [etl.pk, train.pk]
    assert ids(status=["queued", "running"]) == [etl.pk, train.pk, running.pk]
    assert ids(priority_min=20, priority_max=60) == [running.pk]
    assert ids(created_by=developer.pk) == [etl.pk]
    assert ids(search="nothing-like-it") == []


def test_sorting_by_the_form_and_by_column_headers(owner, organization, cluster):
    low = DeploymentFactory(cluster=cluster, name="b-low", priority=1)
    high = DeploymentFactory(cluster=cluster, name="a-high", priority=9)
    page = client_as(owner)

    by_priority = page.get(list_url(organization), {"ordering": "-priority"})
    by_name = page.get(list_url(organization), {"ordering": "name", "search": "-"})

    assert shown(by_priority) == [high.pk, low.pk]
    assert shown(by_name) == [high.pk, low.pk]
    # The sorted column says so, and its link sorts the other way, keeping the filters.
    assert '<th scope="col" aria-sort="ascending">' in by_name.text
    assert "?ordering=-name&amp;search=-" in by_name.text or (
        "?search=-&amp;ordering=-name" in by_name.text
    )


def test_pages_of_fifty_keep_the_filters(owner, organization, cluster):
    DeploymentFactory.create_batch(DEPLOYMENTS_PER_PAGE + 3, cluster=cluster, priority=5)
    page = client_as(owner)

    first = page.get(list_url(organization), {"priority_min": 5})
    second = page.get(list_url(organization), {"priority_min": 5, "page": 2})
    beyond = page.get(list_url(organization), {"priority_min": 5, "page": 99})

    assert len(shown(first)) == DEPLOYMENTS_PER_PAGE
    assert len(shown(second)) == 3
    assert set(shown(first)).isdisjoint(shown(second))
    assert "Page 1 of 2" in first.text
    assert 'href="?priority_min=5&amp;page=2"' in first.text
    assert shown(beyond) == shown(second)  # past the end: the last page


@pytest.mark.parametrize(
    "params",
    [
        {"status": "sleeping"},
        {"ordering": "password"},
        {"priority_min": "-1"},
        {"priority_min": "9", "priority_max": "1"},
        {"cluster": "abc"},
        {"created_by": "999999999"},
    ],
)
def test_bad_filters_answer_400_with_the_fields_errors(owner, organization, params):
    response = client_as(owner).get(list_url(organization), params)

    assert response.status_code == 400
    assert 'class="errorlist' in response.text
    assert "Correct the filters above." in response.text


def test_another_organizations_cluster_or_member_is_not_a_choice(owner, organization):
    foreign = DeploymentFactory(name="theirs")
    page = client_as(owner)

    by_cluster = page.get(list_url(organization), {"cluster": foreign.cluster_id})
    by_member = page.get(list_url(organization), {"created_by": foreign.created_by_id})

    assert by_cluster.status_code == by_member.status_code == 400
    assert "theirs" not in by_cluster.text + by_member.text


def test_an_outsider_gets_404_and_a_visitor_the_sign_in(organization, outsider):
    assert client_as(outsider).get(list_url(organization)).status_code == 404
    response = Client().get(list_url(organization))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_labelled_fields_and_links_from_the_organization_pages(developer, organization, cluster):
    deployment = DeploymentFactory(cluster=cluster, created_by=developer)
    page = client_as(developer)
    listed = page.get(list_url(organization)).text

    for field in ("search", "cluster", "priority_min", "priority_max", "created_by", "ordering"):
        assert f'<label for="id_{field}"' in listed, field
    assert "<legend>Status</legend>" in listed
    for status in Status.values:
        assert f'value="{status}"' in listed
    for url in (
        reverse("web:dashboard", args=[organization.pk]),
        reverse("web:deployment", args=[deployment.pk]),
        reverse("web:deployment-new", args=[organization.pk]),
    ):
        assert f'href="{list_url(organization)}"' in page.get(url).text, url


def test_query_count_does_not_grow_with_the_deployments(owner, organization, cluster):
    page = client_as(owner)
    MembershipFactory(organization=organization, user=UserFactory(), role=Role.VIEWER)
    DeploymentFactory.create_batch(3, cluster=cluster)
    with CaptureQueriesContext(connection) as few:
        page.get(list_url(organization))
    DeploymentFactory.create_batch(30, cluster=cluster, created_by=UserFactory())
    with CaptureQueriesContext(connection) as many:
        page.get(list_url(organization))

    assert len(many) == len(few)


def test_the_list_counts_against_the_per_user_read_limit(settings, owner, organization):
    settings.RATELIMIT_READ_USER = "2/m"
    page = client_as(owner)

    statuses = [page.get(list_url(organization)).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
