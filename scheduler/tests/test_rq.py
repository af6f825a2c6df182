"""The Redis path end to end: a request enqueues a merged pass; real `rqworker` processes
(their own interpreters, their own database connections) run it, and defer, never sleep
through, a pass that falls within its cluster's merge window."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from django.db import connection
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, DeploymentEvent, Status
from deployments.tests.factories import RunningDeploymentFactory
from scheduler.jobs import claim_turn, schedule_cluster_job
from scheduler.merging import PENDING_KEY, redis_connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rq]

ROOT = Path(__file__).resolve().parents[2]


WORKER = [
    sys.executable,
    "manage.py",
    "rqworker",
    "--worker-class",
    "scheduler.worker.SchedulerWorker",
    "default",
]


def _worker_env(**extra: str) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        **extra,
    }


def _run_burst_worker() -> subprocess.CompletedProcess:
    return subprocess.run(
        [*WORKER, "--burst"],
        cwd=ROOT,
        env=_worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def empty_queue():
    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


def test_a_queued_answer_becomes_running_after_the_workers_pass(
    owner, organization, as_user, empty_queue
):
    assert settings.USE_RQ
    api = as_user(owner)
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000)
    # The cluster is full of preemptible low-priority work: what comes next does not fit
    # the free room (which would place it at once), it takes a pass that preempts.
    RunningDeploymentFactory(cluster=cluster, cpu=2000, priority=0)
    body = {
        "cluster": cluster.pk,
        "name": "train",
        "image": "python:3.11",
        "resources": {"cpu": 1, "ram_mb": 64, "gpu": 0},
        "priority": 5,
    }
    created = [
        api.post("/api/v1/deployments", {**body, "name": f"t{i}"}, format="json") for i in range(3)
    ]
    assert [r.status_code for r in created] == [201, 201, 201]
    # Nothing has run the pass yet: the answers say queued, and the three requests
    # for the same cluster merged into one job.
    assert [r.json()["status"] for r in created] == ["queued"] * 3
    assert empty_queue.count == 1

    worker = _run_burst_worker()
    assert worker.returncode == 0, worker.stderr[-2000:]

    statuses = [api.get(f"/api/v1/deployments/{r.json()['id']}").json()["status"] for r in created]
    assert sorted(statuses) == ["queued", "running", "running"]
    assert empty_queue.count == 0


def test_a_cluster_gets_at_most_one_pass_per_merge_window(settings):
    settings.SCHEDULER_MERGE_WINDOW_MS = 400
    redis_connection().delete(*(f"hv:schedule-recent:{pk}" for pk in (1, 2)))
    # A cluster with no recent pass goes at once: an idle stack starts work promptly.
    assert claim_turn(1) == 0
    # The next pass over it must wait for the rest of the window: the caller is told how
    # long, and does not wait itself.
    assert 0 < claim_turn(1) <= 400
    # Other clusters are not held up by it.
    assert claim_turn(2) == 0


def test_a_pass_within_the_window_is_deferred_and_requests_merge_into_it(
    settings, organization, empty_queue
):
    settings.SCHEDULER_MERGE_WINDOW_MS = 60_000
    cluster = ClusterFactory(organization=organization)
    connection_ = redis_connection()
    connection_.delete(f"hv:schedule-recent:{cluster.pk}")
    assert "deferred_ms" not in schedule_cluster_job(cluster.pk)
    connection_.set(PENDING_KEY.format(cluster_id=cluster.pk), "1")

    answer = schedule_cluster_job(cluster.pk, "deployment 1 created")

    # Deferred to the end of the window as one of rq's scheduled jobs, not slept out; the
    # pending key stays, so requests that come meanwhile merge into the deferred job.
    assert 59_000 < answer["deferred_ms"] <= 60_000
    scheduled = ScheduledJobRegistry(queue=empty_queue)
    [job_id] = scheduled.get_job_ids()
    job = empty_queue.fetch_job(job_id)
    assert (job.func_name, job.args) == (
        "scheduler.jobs.schedule_cluster_job",
        (cluster.pk, "deployment 1 created"),
    )
    assert connection_.exists(PENDING_KEY.format(cluster_id=cluster.pk))
    scheduled.remove(job, delete_job=True)
    connection_.delete(f"hv:schedule-recent:{cluster.pk}")


@pytest.mark.slow
def test_eight_busy_clusters_two_workers_no_worker_waits_out_a_window(
    owner, organization, as_user, empty_queue
):
    """8 clusters, each with a second pass due inside its merge window, and 2 real
    workers (with rq's scheduler): every second pass is deferred, then runs after its
    window. Each change needs a pass: it preempts (a start that fits is placed at once)."""
    window_ms = 3000
    api = as_user(owner)
    clusters = [ClusterFactory(organization=organization, capacity_cpu=2000) for _ in range(8)]
    connection_ = redis_connection()
    connection_.delete(*(f"hv:schedule-recent:{c.pk}" for c in clusters))
    connection_.delete("rq:scheduler-lock:default")  # a crashed run's lock would hold ours

    def create(cluster, name, priority):
        body = {
            "cluster": cluster.pk,
            "name": name,
            "image": "python:3.11",
            "resources": {"cpu": 2, "ram_mb": 64, "gpu": 0},
            "priority": priority,
        }
        answer = api.post("/api/v1/deployments", body, format="json")
        assert answer.status_code == 201, answer.content
        return answer.json()

    # Placed at once, in the request: it fits and nothing else waits.
    assert {create(c, "x", 0)["status"] for c in clusters} == {"running"}
    first = [create(c, "a", 5)["id"] for c in clusters]  # must preempt x: a pass each
    assert empty_queue.count == 8
    env = _worker_env(SCHEDULER_MERGE_WINDOW_MS=str(window_ms))
    workers = [subprocess.Popen([*WORKER, "--with-scheduler"], cwd=ROOT, env=env) for _ in range(2)]
    try:
        _wait_for(lambda: _all_running(first))
        # Inside every cluster's window: a deployment that must preempt the first.
        second = [create(c, "b", 9)["id"] for c in clusters]
        _wait_for(lambda: _all_running(second))
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)

    finished = FinishedJobRegistry(queue=empty_queue)
    results = [empty_queue.fetch_job(i).return_value() for i in finished.get_job_ids()]
    ours = {c.pk for c in clusters}
    assert {r["cluster_id"] for r in results if "deferred_ms" in r} & ours == ours
    # Each cluster's second pass came a window after its first (less the few ms between
    # a pass claiming its turn and stamping its starts).
    for a, b in zip(first, second, strict=True):
        started = Deployment.objects.get(pk=b).started_at
        waited = (started - _start_of(a)).total_seconds()  # b preempted a: its event
        assert waited >= 0.9 * window_ms / 1000
    finished.cleanup()


def _start_of(deployment_id: int):
    return DeploymentEvent.objects.get(deployment_id=deployment_id, to_status=Status.RUNNING).at


def _all_running(ids: list[int]) -> bool:
    running = Deployment.objects.filter(pk__in=ids, status=Status.RUNNING).count()
    return running == len(ids)


def _wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the workers did not get there"
        time.sleep(0.05)
