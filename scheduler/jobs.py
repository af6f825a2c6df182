"""RQ entry points. They take ids, re-read everything, and call one service each.

Jobs may run twice (a worker killed mid-job is retried): a pass is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import django_rq
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from redis.exceptions import RedisError

from clusters.models import Cluster
from deployments.services import dependencies_resolve_all, dependencies_sweep
from hypervisor.requestid import job_meta, restored_from_job
from runtime.models import Runtime
from scheduler.lifecycle import reconcile_runtime
from scheduler.merging import PENDING_KEY, PENDING_TTL_SECONDS, REASONS_KEY, redis_connection
from scheduler.runtimework import (
    WATCH_KEY,
    clear_pending,
    run_runtime_work,
    runtime_clusters_with_work,
    watch_runtime,
)
from scheduler.services import PassResult, schedule_cluster


@contextmanager
def _database_hygiene() -> Iterator[None]:
    """What Django does around each request: drop a connection that broke (a database
    restart) or outlived CONN_MAX_AGE. A worker that runs jobs in its own process
    (rq's SimpleWorker) would otherwise keep a dead connection for every later job."""
    # Never inside a transaction (a test, or a caller running the job inline): closing
    # would end the caller's transaction.
    outside = not connection.in_atomic_block
    if outside:
        close_old_connections()
    try:
        yield
    finally:
        if outside:
            close_old_connections()


# Set with a time to live of SCHEDULER_MERGE_WINDOW_MS when a pass over the cluster
# starts. Its remaining time (Redis's clock, whichever worker asks) is how long the next
# pass over that cluster must wait.
RECENT_PASS_KEY = "hv:schedule-recent:{cluster_id}"


def schedule_cluster_job(cluster_id: int, cause: str = "") -> dict:
    """Pass over the cluster now, or, within its merge window, defer to the window's end.

    A deferred job leaves the cluster's pending key set, so the requests that arrive
    meanwhile merge into the deferred job; the worker is free for the next job at once.
    """
    # restored_from_job: log lines carry the id of the request that asked for the pass.
    with _database_hygiene(), restored_from_job():
        wait_ms = claim_turn(cluster_id)
        if wait_ms:
            _defer(cluster_id=cluster_id, cause=cause, delay_ms=wait_ms)
            return {"cluster_id": cluster_id, "deferred_ms": wait_ms}
        redis_connection().delete(PENDING_KEY.format(cluster_id=cluster_id))
        return _summary(schedule_cluster(cluster_id=cluster_id, cause=cause))


def claim_turn(cluster_id: int) -> int:
    """At most one pass per cluster per SCHEDULER_MERGE_WINDOW_MS, counted from the start
    of one to the start of the next. Returns 0 when the caller may pass now (and marks
    the window as begun), else the milliseconds left of the cluster's window.

    Never waits: a job for a cluster that had no pass within the window passes at once
    (an idle stack starts a deployment moments after its create); a later one learns how
    long to defer itself, and the worker takes its next job, whatever cluster it is for.
    """
    window_ms = settings.SCHEDULER_MERGE_WINDOW_MS
    if window_ms <= 0:
        return 0
    connection = redis_connection()
    key = RECENT_PASS_KEY.format(cluster_id=cluster_id)
    # NX: of two workers with a job for the same cluster, one passes, the other defers.
    while not connection.set(key, "1", nx=True, px=window_ms):
        remaining_ms = connection.pttl(key)
        if remaining_ms > 0:
            return remaining_ms
        if remaining_ms == -1:  # no time to live: not ours; give it one
            connection.pexpire(key, window_ms)
            return window_ms
        # -2: it expired between the SET and the PTTL: try to claim it again.
    return 0


def _defer(*, cluster_id: int, cause: str, delay_ms: int) -> None:
    """Enqueue the cluster's pass to run in `delay_ms`, as one of rq's scheduled jobs
    (`rqworker --with-scheduler` moves it to the queue when it is due). The cluster's
    pending key stays set, so requests meanwhile merge into this job. On commit, like
    every enqueue: rq's `enqueue_in` does not wait for it by itself."""

    def enqueue() -> None:
        connection = redis_connection()
        try:
            django_rq.get_queue("default", connection=connection).enqueue_in(
                timedelta(milliseconds=delay_ms),
                schedule_cluster_job,
                cluster_id,
                cause,
                meta=job_meta(),
            )
        except RedisError:
            # Let the next request enqueue a pass rather than merge into a lost one.
            connection.delete(PENDING_KEY.format(cluster_id=cluster_id))
            raise

    transaction.on_commit(enqueue)


def reasons_refresh_job(cluster_id: int) -> dict:
    """A refresh of the cluster's queue reasons is due (`triggers.request_reasons_refresh`):
    ask for its pass as any change does, merged with one already waiting."""
    with restored_from_job():
        connection = redis_connection()
        connection.delete(REASONS_KEY.format(cluster_id=cluster_id))
        pending = PENDING_KEY.format(cluster_id=cluster_id)
        if not connection.set(pending, "1", nx=True, ex=PENDING_TTL_SECONDS):
            return {"cluster_id": cluster_id, "merged": True}  # a pass is on its way
    # Holding the pending key, as the job that a request enqueues does.
    return schedule_cluster_job(cluster_id)


def dependencies_sweep_job(organization_id: int, after_pk: int) -> None:
    """A cascade too large for one transaction, settled in batches (each its own)."""
    with _database_hygiene(), restored_from_job():
        dependencies_sweep(organization_id=organization_id, after_pk=after_pk)


def runtime_work_job(cluster_id: int) -> None:
    """A cluster's starts and stops, then its runtime's reconciliation (`runtimework`)."""
    with _database_hygiene():
        clear_pending(cluster_id)
        run_runtime_work(cluster_id=cluster_id)


def watch_runtime_job(runtime_id: int) -> dict:
    """Reconcile a runtime that runs deployments; again later while any still runs."""
    with _database_hygiene():
        redis_connection().delete(WATCH_KEY.format(runtime_id=runtime_id))
        result = reconcile_runtime(runtime_id=runtime_id)
        watch_runtime(runtime_id=runtime_id)
        return {"ended": result.ended, "lost": result.lost, "orphans": result.orphans_removed}


def safety_net_job() -> list[dict]:
    """Pass over every cluster: repairs anything a lost trigger left behind."""
    with _database_hygiene():
        return _safety_net()


def _safety_net() -> list[dict]:
    dependencies_resolve_all()
    results = [
        schedule_cluster(cluster_id=pk) for pk in Cluster.objects.values_list("pk", flat=True)
    ]
    # Runtimes: every pending start or stop retried, every runtime reconciled.
    for cluster_id in runtime_clusters_with_work():
        run_runtime_work(cluster_id=cluster_id)
    for runtime_id in Runtime.objects.values_list("pk", flat=True):
        reconcile_runtime(runtime_id=runtime_id)
    return [_summary(r) for r in results if r.changed]


def _summary(result: PassResult) -> dict:
    return {
        "cluster_id": result.cluster_id,
        "started": result.started,
        "preempted": result.preempted,
        "waiting": result.waiting,
    }
