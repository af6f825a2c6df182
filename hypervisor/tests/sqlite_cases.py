"""Cases for the embedded default, SQLite: run by `test_sqlite.py` in a process of its own
(`DATABASE_URL=sqlite://...`), since the rest of the suite runs on PostgreSQL.

Issue 16, finding 4: a 1,100-long pending chain made the queue, the dashboard, its live
fragment and the deployments' pages 500 (`Expression tree is too large`: SQLite turns an
`IN` of more than 999 ids into ORs). Finding 10: ids beyond 2**63 in page and API paths
were a 500 (SQLite cannot bind them) where PostgreSQL answered 404.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from clusters.tests.factories import ClusterFactory
from deployments.models import Dependency, Status
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory

pytestmark = pytest.mark.django_db

HUGE = "9223372036854775808"


def test_the_engine_is_sqlite():
    assert connection.vendor == "sqlite"


@pytest.fixture
def page(owner):
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    return client


def test_a_long_pending_chain_breaks_no_page(page, organization):
    cluster = ClusterFactory(organization=organization, capacity_cpu=64_000)
    previous = RunningDeploymentFactory(cluster=cluster)
    for _ in range(1_100):
        link = DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)
        Dependency.objects.create(dependent=link, dependency=previous, condition="succeeded")
        previous = link

    for url in [
        f"/api/v1/clusters/{cluster.pk}/queue",
        f"/orgs/{organization.pk}/",
        f"/orgs/{organization.pk}/live/",
        f"/deployments/{previous.pk}/",
        f"/deployments/{previous.pk}/live/",
    ]:
        assert page.get(url).status_code == 200, url


def test_huge_ids_in_paths_are_404(page, organization, developer):
    org, member = organization.pk, developer.pk
    for method, url in [
        ("GET", f"/orgs/{HUGE}/"),
        ("GET", f"/orgs/{HUGE}/live/"),
        ("GET", f"/orgs/{HUGE}/deployments/new/"),
        ("GET", f"/deployments/{HUGE}/"),
        ("POST", f"/deployments/{HUGE}/cancel/"),
        ("PATCH", f"/api/v1/organizations/{org}/members/{HUGE}"),
        ("DELETE", f"/api/v1/organizations/{org}/members/{HUGE}"),
        ("PATCH", f"/api/v1/organizations/{HUGE}/members/{member}"),
        ("GET", f"/api/v1/organizations/{HUGE}"),
        ("GET", f"/api/v1/clusters/{HUGE}/queue"),
        ("GET", f"/api/v1/deployments/{HUGE}"),
    ]:
        response = page.generic(method, url, '{"role": "viewer"}', content_type="application/json")
        assert response.status_code == 404, (method, url, response.status_code)
