"""A decision without a pass leaves the reasons of the deployments it did not read stale;
a coalesced refresh rewrites them within `SCHEDULER_REASONS_SECONDS`: in-process
(a daemon timer, the embedded mode) and through Redis and a real `rqworker` (one of
rq's scheduled jobs, then the cluster's merged pass)."""

from __future__ import annotations

import subprocess
import time

import django_rq
import pytest
from rq.registry import ScheduledJobRegistry

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment
from deployments.services import Action, deployment_act
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory
from hypervisor.tests.workers import ROOT, worker_command, worker_env
from scheduler.merging import REASONS_KEY, redis_connection
from scheduler.services import schedule_cluster
from scheduler.tests.test_incremental import _full_plan

pytestmark = pytest.mark.django_db(transaction=True)


def _explained_queue():
    """A 4-CPU cluster running 1 + 1 + 1 CPU of non-preemptible work, and a 4-CPU
    deployment that no completion lets start, explained by a pass: "1 CPU free"."""
    cluster = ClusterFactory(capacity_cpu=4000, capacity_gpu=0)
    done = RunningDeploymentFactory.create_batch(2, cluster=cluster, cpu=1000, preemptible=False)
    RunningDeploymentFactory(cluster=cluster, cpu=1000, preemptible=False)
    waiting = DeploymentFactory(cluster=cluster, cpu=4000)
    schedule_cluster(cluster_id=cluster.pk)
    return cluster, done, waiting


def _reason(deployment: Deployment) -> str:
    return Deployment.objects.values_list("status_reason", flat=True).get(pk=deployment.pk)


def _wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the reason was not refreshed in time"
        time.sleep(0.05)


def test_a_reason_left_stale_is_refreshed_within_the_interval_in_process(settings, passes):
    settings.SCHEDULER_REASONS_SECONDS = 0.5
    cluster, done, waiting = _explained_queue()
    stale = _reason(waiting)
    actor = UserFactory()
    passes.clear()

    for deployment in done:  # two changes within the interval: one refresh
        deployment_act(actor=actor, deployment_id=deployment.pk, action=Action.COMPLETE)

    # Nothing could start: no pass, and the reason still names the room of before.
    assert passes == []
    assert _reason(waiting) == stale
    [fresh] = [e.reason for e in _full_plan(cluster).queue if e.deployment_id == waiting.pk]
    assert fresh != stale
    # The margin over the interval is for this loaded machine, not part of the bound.
    _wait_for(lambda: _reason(waiting) == fresh, seconds=0.5 + 10)
    time.sleep(1)  # two intervals: a second refresh would have come by now
    assert [p.path for p in passes] == ["pass"]


@pytest.mark.rq
def test_a_reason_left_stale_is_refreshed_within_the_interval_through_redis(settings):
    settings.SCHEDULER_REASONS_SECONDS = 0.5
    queue = django_rq.get_queue("default")
    queue.empty()
    cluster, done, waiting = _explained_queue()
    redis_connection().delete(REASONS_KEY.format(cluster_id=cluster.pk))
    stale = _reason(waiting)
    actor = UserFactory()

    for deployment in done:
        deployment_act(actor=actor, deployment_id=deployment.pk, action=Action.COMPLETE)

    # Decided in this process without a pass; one refresh scheduled for both changes.
    assert _reason(waiting) == stale
    scheduled = ScheduledJobRegistry(queue=queue)
    jobs = [queue.fetch_job(job_id) for job_id in scheduled.get_job_ids()]
    assert [(j.func_name, j.args) for j in jobs] == [
        ("scheduler.jobs.reasons_refresh_job", (cluster.pk,))
    ]
    [fresh] = [e.reason for e in _full_plan(cluster).queue if e.deployment_id == waiting.pk]
    worker = subprocess.Popen(worker_command("--with-scheduler"), cwd=ROOT, env=worker_env())
    try:
        # The margin covers the worker's start-up on this loaded machine.
        _wait_for(lambda: _reason(waiting) == fresh, seconds=0.5 + 60)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        queue.empty()
