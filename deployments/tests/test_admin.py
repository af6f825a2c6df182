"""The operators' deployment admin: filters and search without a query per row, the
history read-only, and cancel / reschedule through the services."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, DeploymentEvent, Status
from deployments.tests.factories import DeploymentFactory
from web.tests.factories import DependencyFactory, DeploymentEventFactory, RunningDeploymentFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:deployments_deployment_changelist")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator_user():
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def operator(operator_user) -> Client:
    return client_for(operator_user)


def change_url(deployment: Deployment) -> str:
    return reverse("admin:deployments_deployment_change", args=[deployment.pk])


def listed(client: Client, query: str = "") -> set[int]:
    body = client.get(f"{CHANGELIST}?{query}").content.decode()
    return {
        pk
        for pk in Deployment.objects.values_list("pk", flat=True)
        if f'href="{change_url(Deployment(pk=pk))}' in body
    }


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_changelist_queries_do_not_grow_with_rows(operator):
    clusters = ClusterFactory.create_batch(3)

    def add(count: int) -> None:
        for i in range(count):
            DeploymentFactory(cluster=clusters[i % 3], created_by=UserFactory())

    add(3)
    few = queries(operator, CHANGELIST)
    add(27)
    assert queries(operator, CHANGELIST) == few
    assert queries(operator, f"{CHANGELIST}?status=queued&priority_band=0") == few


def test_filters_and_search(operator):
    gpu = ClusterFactory(name="gpu-east")
    cpu = ClusterFactory(name="cpu-west")
    urgent = RunningDeploymentFactory(cluster=gpu, priority=500, name="urgent-finetune")
    normal = DeploymentFactory(cluster=gpu, priority=0, name="nightly-report")
    other = DeploymentFactory(cluster=cpu, priority=50, image="python:3.11")
    everything = {urgent.pk, normal.pk, other.pk}
    assert listed(operator) == everything
    assert listed(operator, "status=running") == {urgent.pk}
    assert listed(operator, f"cluster__id__exact={cpu.pk}") == {other.pk}
    assert listed(operator, f"cluster__organization__id__exact={gpu.organization_id}") == {
        urgent.pk,
        normal.pk,
    }
    assert listed(operator, "priority_band=100-9999") == {urgent.pk}
    assert listed(operator, "priority_band=1-99") == {other.pk}
    assert listed(operator, "q=finetune") == {urgent.pk}
    assert listed(operator, "q=python") == {other.pk}
    assert listed(operator, f"q={normal.pk}") >= {normal.pk}
    # Cluster names repeat across organizations: the filter names both.
    body = operator.get(CHANGELIST).content.decode()
    assert f"{gpu.organization.name} / gpu-east" in body


def test_change_page_is_read_only_with_dependencies_and_timeline(operator):
    deployment = DeploymentFactory()
    DependencyFactory(dependency=deployment, dependent__name="after-it")
    DeploymentEventFactory(deployment=deployment, reason="preempted by deployment 9")
    body = operator.get(change_url(deployment)).content.decode()
    assert "preempted by deployment 9" in body and "after-it" in body
    assert 'name="_save"' not in body  # nothing to save: services change deployments
    response = operator.post(change_url(deployment), {"name": "renamed"})
    assert response.status_code == 403
    assert operator.get(reverse("admin:deployments_deployment_add")).status_code == 403


def test_change_page_queries_do_not_grow_with_history(operator):
    def deployment_with(count: int) -> Deployment:
        deployment = DeploymentFactory()
        for _ in range(count):
            DeploymentEventFactory(deployment=deployment, actor=UserFactory())
            DependencyFactory(dependency=deployment)
        return deployment

    few = queries(operator, change_url(deployment_with(1)))
    assert queries(operator, change_url(deployment_with(10))) == few


@pytest.mark.django_db(transaction=True)
def test_cancel_action_calls_the_service_and_the_queue_moves(operator, operator_user):
    cluster = ClusterFactory(capacity_cpu=1000, allocated_cpu=1000, allocated_ram_mb=1024)
    running = RunningDeploymentFactory(cluster=cluster)
    waiting = DeploymentFactory(cluster=cluster)
    finished = DeploymentFactory(cluster=cluster, status=Status.COMPLETED)
    selected = {"action": "cancel", "_selected_action": [running.pk, finished.pk]}
    ask = operator.post(CHANGELIST, selected).content.decode()
    assert "Cancel 2 deployment(s)?" in ask and "Yes, cancel them" in ask
    running.refresh_from_db()
    assert running.status == Status.RUNNING  # asking changed nothing
    response = operator.post(CHANGELIST, {**selected, "confirmed": "yes"}, follow=True)
    body = response.content.decode()
    assert "Cancelled 1 deployment(s)." in body
    assert f"Not cancelled (their status does not allow it, or gone): {finished.pk}." in body
    running.refresh_from_db()
    assert running.status == Status.CANCELLED
    event = DeploymentEvent.objects.get(deployment=running, to_status=Status.CANCELLED)
    assert event.actor == operator_user
    waiting.refresh_from_db()
    assert waiting.status == Status.RUNNING  # the pass after the cancel started it
    entry = LogEntry.objects.get(object_id=str(running.pk), content_type__model="deployment")
    assert entry.user == operator_user and entry.get_change_message() == "Cancelled."


def test_fail_action_asks_then_fails_through_the_service(operator):
    cluster = ClusterFactory(capacity_cpu=1000, allocated_cpu=1000, allocated_ram_mb=1024)
    running = RunningDeploymentFactory(cluster=cluster)
    selected = {"action": "fail", "_selected_action": [running.pk]}
    assert "Yes, mark them failed" in operator.post(CHANGELIST, selected).content.decode()
    operator.post(CHANGELIST, {**selected, "confirmed": "yes"})
    running.refresh_from_db()
    assert running.status == Status.FAILED


def test_times_show_seconds_and_the_time_zone(operator):
    deployment = RunningDeploymentFactory()
    body = operator.get(CHANGELIST).content.decode()
    started = deployment.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert f"{started} UTC" in body


@pytest.mark.django_db(transaction=True)
def test_reschedule_cluster_action(operator):
    waiting = DeploymentFactory()  # written behind the scheduler's back, room is free
    response = operator.post(
        CHANGELIST, {"action": "reschedule_cluster", "_selected_action": [waiting.pk]}, follow=True
    )
    assert "Requested a scheduling pass for 1 cluster(s)." in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == Status.RUNNING


def test_actions_need_the_change_permission(operator):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_deployment"))
    client = client_for(staff)
    body = client.get(CHANGELIST).content.decode()
    assert 'value="cancel"' not in body
    deployment = RunningDeploymentFactory()
    selected = {"action": "cancel", "_selected_action": [deployment.pk], "confirmed": "yes"}
    client.post(CHANGELIST, selected)
    deployment.refresh_from_db()
    assert deployment.status == Status.RUNNING
    staff.user_permissions.add(Permission.objects.get(codename="change_deployment"))
    assert 'value="cancel"' in client_for(staff).get(CHANGELIST).content.decode()
