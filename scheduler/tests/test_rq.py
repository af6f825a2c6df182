"""The Redis path end to end: a request enqueues a merged pass; real `rqworker` processes
(their own interpreters, their own database connections) run it, and defer, never sleep
through, a pass that falls within its cluster's merge window. The pending-key protocol
under a change made during a pass, and the in-process fallback when Redis cannot be
reached (a real refused connection, not a mock)."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time

import django_rq
import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, DeploymentEvent, Status
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory
from hypervisor.tests.workers import ROOT, run_burst_worker, worker_command, worker_env
from scheduler.jobs import claim_turn, schedule_cluster_job
from scheduler.merging import PENDING_KEY, redis_connection
from scheduler.triggers import dispatch_schedule, request_schedule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rq]


def _run_burst_worker() -> subprocess.CompletedProcess:
    return run_burst_worker("--worker-class", "scheduler.worker.SchedulerWorker")


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
    env = worker_env(SCHEDULER_MERGE_WINDOW_MS=str(window_ms))
    workers = [
        subprocess.Popen(worker_command("--with-scheduler"), cwd=ROOT, env=env) for _ in range(2)
    ]
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


def _status(deployment: Deployment) -> str:
    return Deployment.objects.values_list("status", flat=True).get(pk=deployment.pk)


def _wait_for_a_lock_wait(timeout: float = 60) -> None:
    """Until some session of the test database waits on a row lock (the worker's pass)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError("the worker's pass never reached the row lock")


def test_a_change_made_during_a_pass_gets_a_pass_of_its_own(empty_queue):
    """The job clears the cluster's pending key *before* it plans, so a request that
    arrives while the pass runs enqueues a new job instead of merging into the running
    one, which has already read its rows and would never see the change.

    The changes are rows plus the trigger itself (`dispatch_schedule`, what a service's
    request runs on commit), so that no shortcut of scheduler.incremental decides them
    without a pass."""
    cluster = ClusterFactory(capacity_cpu=4000)
    first = DeploymentFactory(cluster=cluster, cpu=1000)
    dispatch_schedule(cluster_id=cluster.pk)
    assert empty_queue.count == 1

    # Hold `first`'s row from another session: the worker's pass takes the cluster lock,
    # starts reading its queued rows, and waits there, its read of the rows begun.
    locked, release = threading.Event(), threading.Event()

    def hold_first_row() -> None:
        try:
            with transaction.atomic():
                Deployment.objects.select_for_update().get(pk=first.pk)
                locked.set()
                release.wait(60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_first_row)
    holder.start()
    assert locked.wait(30)
    worker = subprocess.Popen(
        worker_command("--burst"),
        cwd=ROOT,
        env=worker_env(SCHEDULER_MERGE_WINDOW_MS="0"),  # the window is not under test
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_a_lock_wait()
        # The change during the pass: its request must not be merged into the running job.
        second = DeploymentFactory(cluster=cluster, cpu=1000)
        dispatch_schedule(cluster_id=cluster.pk)
        assert empty_queue.count == 1, "the request during the pass enqueued no pass"
    finally:
        release.set()
        holder.join(30)
        output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, output[-2000:]

    # The burst worker ran both jobs: the first pass started `first`, the second `second`.
    assert (_status(first), _status(second)) == ("running", "running")
    assert not redis_connection().exists(PENDING_KEY.format(cluster_id=cluster.pk))


@pytest.fixture
def unreachable_redis(settings):
    """RQ pointed at a loopback port that is bound but not listening: every connection is
    refused at once, as when Redis is down. Held for the test, so no one else gets it."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        settings.RQ_QUEUES = {
            "default": {"URL": f"redis://127.0.0.1:{port}/0", "DEFAULT_TIMEOUT": 300}
        }
        redis_connection.cache_clear()
        try:
            yield port
        finally:
            redis_connection.cache_clear()


def test_with_redis_unreachable_the_pass_runs_in_process(unreachable_redis, caplog):
    assert settings.USE_RQ
    with pytest.raises(redis.ConnectionError):
        redis_connection().ping()
    cluster = ClusterFactory(capacity_cpu=2000)
    waiting = DeploymentFactory(cluster=cluster, cpu=1000)

    # The request runs on commit, as a service's does.
    with caplog.at_level(logging.WARNING, logger="scheduler.triggers"), transaction.atomic():
        request_schedule(cluster_id=cluster.pk)

    # No worker exists here: only the in-process fallback can have started it.
    assert _status(waiting) == "running"
    assert "redis unavailable; scheduling in-process" in caplog.text
