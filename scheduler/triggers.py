"""`request_schedule`: the one way to ask for a scheduling pass.

Services, signals, the admin and `manage.py reschedule` call only this. The pass runs
after the caller's transaction commits, so it sees the caller's changes and never holds
the cluster lock inside someone else's transaction:
- with `REDIS_URL` set, as an RQ job; requests for a cluster merge while one is waiting;
- otherwise in-process, so the HTTP answer already shows the outcome.
"""

from __future__ import annotations

import functools
import logging

import django_rq
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError

from ops.requestid import job_meta

logger = logging.getLogger(__name__)

# Set while a pass for the cluster is enqueued and not yet started.
PENDING_KEY = "hv:schedule-pending:{cluster_id}"
PENDING_TTL_SECONDS = 30  # a job lost before clearing it holds merges this long at most


@functools.cache
def redis_connection():
    """One client (and connection pool) per process: django_rq's `get_connection` builds a
    new pool, hence a new TCP connection, on every call. redis-py's pool is fork-safe."""
    return django_rq.get_connection("default")


def request_schedule(*, cluster_id: int, cause: str = "") -> None:
    """Ask for a pass over `cluster_id` once the current transaction commits."""
    transaction.on_commit(lambda: dispatch_schedule(cluster_id=cluster_id, cause=cause))


def dispatch_schedule(*, cluster_id: int, cause: str = "") -> None:
    if not settings.USE_RQ:
        from scheduler.services import schedule_cluster

        schedule_cluster(cluster_id=cluster_id, cause=cause)
        return
    try:
        _enqueue_merged(cluster_id=cluster_id, cause=cause)
    except RedisError:
        # Redis is down: do the pass here rather than lose it. The safety net also
        # covers any trigger lost between the commit and this point.
        logger.warning("redis unavailable; scheduling in-process", extra={"cluster_id": cluster_id})
        from scheduler.services import schedule_cluster

        schedule_cluster(cluster_id=cluster_id, cause=cause)


def _enqueue_merged(*, cluster_id: int, cause: str) -> None:
    from scheduler.jobs import schedule_cluster_job

    connection = redis_connection()
    key = PENDING_KEY.format(cluster_id=cluster_id)
    # NX: only the first request while a job waits enqueues; the job clears the key
    # before planning, so a request that arrives during the pass enqueues a new one.
    if connection.set(key, "1", nx=True, ex=PENDING_TTL_SECONDS):
        try:
            # meta: the request id of whoever asked, so the job's logs carry it too.
            django_rq.get_queue("default", connection=connection).enqueue(
                schedule_cluster_job, cluster_id, cause, meta=job_meta()
            )
        except RedisError:
            connection.delete(key)
            raise
