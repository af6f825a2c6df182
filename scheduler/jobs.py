"""RQ entry points. They take ids, re-read everything, and call one service each.

Jobs may run twice (a worker killed mid-job is retried): a pass is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from django.conf import settings
from django.db import close_old_connections, connection
from rq import get_current_job

from clusters.models import Cluster
from ops.requestid import restored_from_job
from scheduler.services import PassResult, schedule_cluster
from scheduler.triggers import PENDING_KEY, redis_connection


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


def schedule_cluster_job(cluster_id: int, cause: str = "") -> dict:
    # restored_from_job: log lines carry the id of the request that asked for the pass.
    with _database_hygiene(), restored_from_job():
        _let_requests_merge()
        redis_connection().delete(PENDING_KEY.format(cluster_id=cluster_id))
        return _summary(schedule_cluster(cluster_id=cluster_id, cause=cause))


def _let_requests_merge() -> None:
    """Requests for this cluster merge into this job until it clears the pending key: let
    the job be SCHEDULER_MERGE_WINDOW_MS old first, so that a burst of changes shares one
    pass. Under load jobs wait that long in the queue anyway, and nothing sleeps."""
    job = get_current_job()
    window = settings.SCHEDULER_MERGE_WINDOW_MS / 1000
    if job is None or job.enqueued_at is None or window <= 0:
        return
    enqueued = job.enqueued_at
    if enqueued.tzinfo is None:  # rq stores UTC
        enqueued = enqueued.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - enqueued).total_seconds()
    if age < window:
        time.sleep(window - age)


def safety_net_job() -> list[dict]:
    """Pass over every cluster: repairs anything a lost trigger left behind."""
    with _database_hygiene():
        return _safety_net()


def _safety_net() -> list[dict]:
    from deployments.services import dependencies_resolve_all

    dependencies_resolve_all()
    results = [
        schedule_cluster(cluster_id=pk) for pk in Cluster.objects.values_list("pk", flat=True)
    ]
    return [_summary(r) for r in results if r.changed]


def _summary(result: PassResult) -> dict:
    return {
        "cluster_id": result.cluster_id,
        "started": result.started,
        "preempted": result.preempted,
        "waiting": result.waiting,
    }
