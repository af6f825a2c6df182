"""`GET /api/v1/deployments`: search, several statuses, ordering, priority range and
submitter filters, and the 400s for what it does not know (API.md, Deployments)."""

from __future__ import annotations

import pytest

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.models import Status
from deployments.selectors import ORDERING_FIELDS
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory

pytestmark = pytest.mark.django_db

DEPLOYMENTS = "/api/v1/deployments"


@pytest.fixture
def cluster(organization):
    return ClusterFactory(organization=organization, capacity_cpu=64_000)


@pytest.fixture
def api(owner, as_user):
    return as_user(owner)


def _ids(api, **params) -> list[int]:
    response = api.get(DEPLOYMENTS, params)
    assert response.status_code == 200, response.json()
    return [d["id"] for d in response.json()["results"]]


def test_search_matches_name_or_image_case_insensitively(api, cluster):
    trainer = DeploymentFactory(cluster=cluster, name="train-resnet", image="reg.io/a/x:1")
    by_image = DeploymentFactory(cluster=cluster, name="etl", image="reg.io/team/TRAINER:2")
    report = DeploymentFactory(cluster=cluster, name="report", image="reg.io/team/report:1")

    assert _ids(api, search="train") == [trainer.pk, by_image.pk]
    assert _ids(api, search="Report") == [report.pk]
    assert _ids(api, search="%") == []  # a LIKE wildcard is only a character
    assert _ids(api, search="") == _ids(api)


def test_several_statuses_comma_separated_or_repeated(api, cluster):
    queued = DeploymentFactory(cluster=cluster)
    running = RunningDeploymentFactory(cluster=cluster)
    pending = DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)

    assert _ids(api, status="queued,running") == [queued.pk, running.pk]
    assert _ids(api, status=["pending", "running"]) == [running.pk, pending.pk]
    assert _ids(api, status="pending, queued,") == [queued.pk, pending.pk]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"status": "queued,sleeping"}, "status", "'sleeping'"),
        ({"status": "QUEUED"}, "status", "'QUEUED'"),
        ({"ordering": "password"}, "ordering", "'password'"),
        ({"ordering": "-priority,cluster__organization__name"}, "ordering", "cluster__org"),
        ({"ordering": "a,b,c,d,e"}, "ordering", "'a'"),
        ({"priority_min": "-1"}, "priority_min", "greater than or equal"),
        ({"priority_max": "1000001"}, "priority_max", "less than or equal"),
        ({"priority_min": "5", "priority_max": "4"}, "priority_min", "priority_max"),
        ({"created_by": "me"}, "created_by", "integer"),
        ({"search": "x" * 201}, "search", "200"),
        ({"search": "a\x00b"}, "search", "Null"),
    ],
)
def test_unknown_or_bad_values_are_400_naming_field_and_reason(api, cluster, params, field, words):
    response = api.get(DEPLOYMENTS, params)

    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field]
    assert words in " ".join(errors[field])


def test_the_status_error_lists_the_known_statuses(api):
    message = api.get(DEPLOYMENTS, {"status": "sleeping"}).json()["status"][0]

    assert all(status in message for status in Status.values)


def test_ordering_by_each_documented_field_answers(api, cluster):
    DeploymentFactory.create_batch(3, cluster=cluster)

    for field in ORDERING_FIELDS:
        for term in (field, f"-{field}"):
            assert len(_ids(api, ordering=term)) == 3, term


def test_ordering_several_fields_with_id_breaking_ties(api, cluster):
    low_old = DeploymentFactory(cluster=cluster, priority=1)
    high_old = DeploymentFactory(cluster=cluster, priority=9)
    low_new = DeploymentFactory(cluster=cluster, priority=1)
    high_new = DeploymentFactory(cluster=cluster, priority=9)

    assert _ids(api, ordering="-priority") == [high_old.pk, high_new.pk, low_old.pk, low_new.pk]
    assert _ids(api, ordering="priority,-id") == [low_new.pk, low_old.pk, high_new.pk, high_old.pk]
    assert _ids(api, ordering="-id") == [high_new.pk, low_new.pk, high_old.pk, low_old.pk]


def test_empty_timestamps_sort_last_both_ways(api, cluster):
    queued = DeploymentFactory(cluster=cluster)
    running = RunningDeploymentFactory(cluster=cluster)

    assert _ids(api, ordering="started_at") == [running.pk, queued.pk]
    assert _ids(api, ordering="-started_at") == [running.pk, queued.pk]


def test_pages_of_a_sorted_list_neither_overlap_nor_skip(api, cluster):
    created = DeploymentFactory.create_batch(7, cluster=cluster, priority=3)

    seen = []
    for page in (1, 2, 3):
        seen += _ids(api, ordering="-priority", page_size=3, page=page)

    assert seen == [d.pk for d in created]


def test_priority_range_and_submitter(api, cluster, developer):
    other = UserFactory(username="Bob")
    low = DeploymentFactory(cluster=cluster, priority=0, created_by=developer)
    mid = DeploymentFactory(cluster=cluster, priority=50, created_by=other)
    high = DeploymentFactory(cluster=cluster, priority=100, created_by=developer)

    assert _ids(api, priority_min=50) == [mid.pk, high.pk]
    assert _ids(api, priority_max=50) == [low.pk, mid.pk]
    assert _ids(api, priority_min=50, priority_max=50) == [mid.pk]
    assert _ids(api, created_by=developer.pk) == [low.pk, high.pk]
    assert _ids(api, created_by_username="bob") == [mid.pk]
    assert _ids(api, created_by=developer.pk, priority_min=1) == [high.pk]


def test_filters_never_reach_another_tenant(api, cluster):
    mine = DeploymentFactory(cluster=cluster, name="shared-name")
    foreign = DeploymentFactory(name="shared-name")

    assert _ids(api, search="shared-name") == [mine.pk]
    assert _ids(api, created_by=foreign.created_by_id) == []
