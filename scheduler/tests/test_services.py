"""The scheduling pass against PostgreSQL: apply, preempt, requeue, idempotence, the
database's own capacity guard."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from accounts.tests.factories import UserFactory
from clusters.services import ClusterChanges, cluster_update
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, DeploymentEvent, Status
from deployments.services import Action, DeploymentSpec, deployment_act, deployment_create
from hypervisor.resources import Resources
from scheduler.services import schedule_cluster
from scheduler.tests.guarantees import all_violations

pytestmark = pytest.mark.django_db(transaction=True)


def submit(cluster, *, cpu: float, priority: int = 0, preemptible: bool = True, gpu: int = 0):
    spec = DeploymentSpec(
        name=f"job-p{priority}",
        image="registry.example.com/team/job:1",
        resources=Resources(int(cpu * 1000), 128, gpu),
        priority=priority,
        preemptible=preemptible,
    )
    created = deployment_create(actor=UserFactory(), cluster=cluster, spec=spec)
    return Deployment.objects.get(pk=created.pk)


def test_a_pass_starts_what_fits_and_counts_it():
    cluster = ClusterFactory(capacity_cpu=4000)
    a, b = submit(cluster, cpu=3), submit(cluster, cpu=3)
    assert (a.status, b.status) == (Status.RUNNING, Status.QUEUED)
    cluster.refresh_from_db()
    assert cluster.allocated == Resources(3000, 128, 0)
    assert "CPU" in b.status_reason
    assert all_violations(cluster) == []


def test_preemption_requeues_the_victim_in_its_original_place():
    cluster = ClusterFactory(capacity_cpu=4000)
    low = submit(cluster, cpu=3, priority=1)
    waiting = submit(cluster, cpu=2, priority=1)
    high = submit(cluster, cpu=4, priority=9)
    low.refresh_from_db()
    waiting.refresh_from_db()
    assert high.status == Status.RUNNING
    assert low.status == Status.QUEUED and low.preemption_count == 1
    assert low.started_at is None
    preempted = DeploymentEvent.objects.get(
        deployment=low, from_status=Status.RUNNING, to_status=Status.QUEUED
    )
    assert preempted.related_deployment_id == high.pk
    assert f"deployment {high.pk}" in preempted.reason
    # The victim keeps its original queue time, so it stays ahead of later arrivals.
    assert low.queued_at < waiting.queued_at
    deployment_act(actor=UserFactory(), deployment_id=high.pk, action=Action.COMPLETE)
    low.refresh_from_db()
    assert low.status == Status.RUNNING
    restart = DeploymentEvent.objects.filter(deployment=low, to_status=Status.RUNNING).last()
    assert restart.reason == f"started in the room made by the completion of deployment {high.pk}"
    assert all_violations(cluster) == []


def test_non_preemptible_and_equal_priority_work_is_never_preempted():
    cluster = ClusterFactory(capacity_cpu=4000)
    pinned = submit(cluster, cpu=2, priority=0, preemptible=False)
    peer = submit(cluster, cpu=2, priority=5)
    high = submit(cluster, cpu=3, priority=5)
    for deployment in (pinned, peer, high):
        deployment.refresh_from_db()
    assert (pinned.status, peer.status, high.status) == (
        Status.RUNNING,
        Status.RUNNING,
        Status.QUEUED,
    )
    assert all_violations(cluster) == []


def test_a_second_pass_changes_nothing():
    cluster = ClusterFactory(capacity_cpu=2000)
    for priority in (0, 3, 3, 7):
        submit(cluster, cpu=1, priority=priority)
    events = DeploymentEvent.objects.count()
    result = schedule_cluster(cluster_id=cluster.pk)
    assert not result.changed
    assert DeploymentEvent.objects.count() == events


def test_capacity_increase_starts_waiting_work_and_says_so():
    cluster = ClusterFactory(capacity_cpu=1000)
    submit(cluster, cpu=1)
    queued = submit(cluster, cpu=1)
    assert queued.status == Status.QUEUED
    cluster_update(
        cluster_id=cluster.pk, changes=ClusterChanges(capacity=Resources(2000, 32768, 4))
    )
    queued.refresh_from_db()
    assert queued.status == Status.RUNNING
    start = DeploymentEvent.objects.get(deployment=queued, to_status=Status.RUNNING)
    assert "capacity increase" in start.reason


def test_the_database_refuses_over_allocation():
    cluster = ClusterFactory(capacity_cpu=1000)
    cluster.allocated_cpu = 1001
    with pytest.raises(IntegrityError), transaction.atomic():
        cluster.save()


def test_a_pass_over_a_deleted_cluster_is_a_no_op():
    result = schedule_cluster(cluster_id=987654321)
    assert not result.changed and result.waiting == 0
