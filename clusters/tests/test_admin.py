"""The operators' cluster admin: bars and counts without a query per row, writes
through `clusters.services`, and a scheduling pass on demand."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Status
from deployments.tests.factories import DeploymentFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:clusters_cluster_changelist")


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def change_url(cluster: Cluster) -> str:
    return reverse("admin:clusters_cluster_change", args=[cluster.pk])


def busy_cluster(**fields) -> Cluster:
    """Half its CPU allocated to 2 running deployments; 3 waiting."""
    cluster = ClusterFactory(allocated_cpu=4000, allocated_ram_mb=2048, **fields)
    for _ in range(2):
        DeploymentFactory(
            cluster=cluster, status=Status.RUNNING, cpu=2000, started_at=cluster.created_at
        )
    DeploymentFactory.create_batch(2, cluster=cluster)
    DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)
    return cluster


def changelist_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_changelist_shows_bars_and_counts(operator):
    cluster = busy_cluster(name="gpu-east")
    body = operator.get(CHANGELIST).content.decode()
    assert "gpu-east" in body
    assert 'aria-label="CPU: 4 of 8 cores allocated (50%)"' in body
    assert "4 / 8 cores · 50%" in body
    row = body[body.index(change_url(cluster)) :]
    assert '<td class="field-work">2 running, 3 waiting</td>' in row


def test_changelist_queries_do_not_grow_with_rows(operator):
    for _ in range(3):
        busy_cluster()
    few = changelist_queries(operator)
    for _ in range(27):
        busy_cluster()
    assert changelist_queries(operator) == few


@pytest.mark.django_db(transaction=True)
def test_reschedule_action_runs_a_pass(operator):
    # Rows written behind the scheduler's back: room is free, yet it is still queued.
    cluster = ClusterFactory()
    waiting = DeploymentFactory(cluster=cluster)
    response = operator.post(
        CHANGELIST, {"action": "reschedule", "_selected_action": [cluster.pk]}, follow=True
    )
    assert "Requested a scheduling pass for 1 cluster(s)." in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == Status.RUNNING
    assert (
        waiting.events.get(to_status=Status.RUNNING).reason == "started: it fits in the free room"
    )


def form_data(cluster: Cluster, **overrides) -> dict:
    return {
        "name": cluster.name,
        "capacity_cores": "8",
        "capacity_ram_mb": "32768",
        "capacity_gpu": "4",
        "policy": "fifo",
        "starvation_after_seconds": "",
        **overrides,
    }


@pytest.mark.django_db(transaction=True)
def test_capacity_change_goes_through_the_service_and_reschedules(operator):
    cluster = ClusterFactory(capacity_cpu=1000)
    DeploymentFactory(
        cluster=cluster, cpu=1000, status=Status.RUNNING, started_at=cluster.created_at
    )
    cluster.allocated_cpu, cluster.allocated_ram_mb = 1000, 1024
    cluster.save()
    waiting = DeploymentFactory(cluster=cluster, cpu=1500)
    response = operator.post(change_url(cluster), form_data(cluster, capacity_cores="2.5"))
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert cluster.capacity_cpu == 2500
    waiting.refresh_from_db()
    assert waiting.status == Status.RUNNING  # cluster_update requested a pass


def test_shrinking_below_allocated_is_a_form_error(operator):
    cluster = busy_cluster()
    response = operator.post(change_url(cluster), form_data(cluster, capacity_cores="1"))
    assert response.status_code == 200
    assert "below what running deployments hold" in response.content.decode()
    cluster.refresh_from_db()
    assert cluster.capacity_cpu == 8000


def test_duplicate_name_in_the_organization_is_a_form_error(operator):
    cluster = ClusterFactory()
    ClusterFactory(organization=cluster.organization, name="taken")
    response = operator.post(change_url(cluster), form_data(cluster, name="taken"))
    assert "already exists in the organization" in response.content.decode()


def test_add_creates_through_the_service(operator, organization):
    response = operator.post(
        reverse("admin:clusters_cluster_add"),
        {
            "organization": organization.pk,
            **form_data(Cluster(name="new-one"), capacity_cores="0.5", policy="pack"),
        },
    )
    assert response.status_code == 302
    cluster = Cluster.objects.get(name="new-one")
    assert (cluster.capacity_cpu, cluster.policy, cluster.organization) == (
        500,
        "pack",
        organization,
    )


def test_deleting_a_busy_cluster_is_refused_with_a_message(operator):
    cluster = busy_cluster()
    response = operator.post(
        reverse("admin:clusters_cluster_delete", args=[cluster.pk]), {"post": "yes"}, follow=True
    )
    assert "still has 5 running or waiting deployment(s)" in response.content.decode()
    assert Cluster.objects.filter(pk=cluster.pk).exists()


def test_a_busy_clusters_delete_is_refused_before_the_confirmation_page(operator):
    cluster = busy_cluster()
    url = reverse("admin:clusters_cluster_delete", args=[cluster.pk])
    response = operator.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:clusters_cluster_change", args=[cluster.pk])
    page = operator.get(response["Location"]).content.decode()
    assert "still has 5 running or waiting deployment(s)" in page


def test_the_reschedule_action_leaves_history(operator):
    cluster = ClusterFactory()
    operator.post(CHANGELIST, {"action": "reschedule", "_selected_action": [cluster.pk]})
    entry = LogEntry.objects.get(object_id=str(cluster.pk), content_type__model="cluster")
    assert entry.user.is_staff and "scheduling pass" in entry.get_change_message()


def test_deleting_an_idle_cluster_works(operator):
    cluster = ClusterFactory()
    operator.post(reverse("admin:clusters_cluster_delete", args=[cluster.pk]), {"post": "yes"})
    assert not Cluster.objects.filter(pk=cluster.pk).exists()


def test_non_staff_cannot_reach_the_admin(developer):
    client = Client()
    client.force_login(developer)
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
