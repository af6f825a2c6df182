"""`request_schedule`: the one way to ask for a scheduling pass.

The scheduler's own callers (`manage.py reschedule`, the admin) call it; the clusters and
deployments layers, below the scheduler, send `clusters.signals.pass_wanted`, which
`SchedulerConfig.ready()` connects to it. The pass runs
after the caller's transaction commits, so it sees the caller's changes and never holds
the cluster lock inside someone else's transaction:
- with `REDIS_URL` set, as an RQ job; requests for a cluster merge while one is waiting;
- otherwise in-process, so the HTTP answer already shows the outcome.
"""

from __future__ import annotations

import logging
import math

import django_rq
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from redis.exceptions import RedisError

from deployments.services import dependencies_sweep
from hypervisor.requestid import job_meta
from scheduler.incremental import Decision, decide_without_pass
from scheduler.jobs import dependencies_sweep_job, reasons_refresh_job, schedule_cluster_job
from scheduler.merging import (
    PENDING_KEY,
    PENDING_TTL_SECONDS,
    REASONS_KEY,
    defer_once,
    redis_connection,
)
from scheduler.services import schedule_cluster

logger = logging.getLogger(__name__)


def request_schedule(
    *, cluster_id: int, cause: str = "", arrival: int | None = None, shortcut: bool = False
) -> None:
    """Ask for a pass over `cluster_id` once the current transaction commits.

    With `shortcut` (a change to deployments only; `arrival`: a deployment it queued),
    the change is first decided without a pass where the outcome is certain
    (scheduler.incremental: a short transaction here, in the caller's process)."""
    if not shortcut:
        transaction.on_commit(lambda: dispatch_schedule(cluster_id=cluster_id, cause=cause))
        return
    transaction.on_commit(
        lambda: _decide_or_dispatch(cluster_id=cluster_id, cause=cause, arrival=arrival)
    )


def _decide_or_dispatch(*, cluster_id: int, cause: str, arrival: int | None) -> None:
    try:
        decision = decide_without_pass(cluster_id=cluster_id, arrival=arrival, cause=cause)
    except DatabaseError:
        # The change has committed: leave the decision to a pass rather than fail it.
        logger.warning("deciding without a pass failed; asking for one", exc_info=True)
        decision = Decision.NEEDS_PASS
    if decision == Decision.NEEDS_PASS:
        dispatch_schedule(cluster_id=cluster_id, cause=cause)
    elif decision == Decision.DECIDED:
        request_reasons_refresh(cluster_id=cluster_id)


def request_reasons_refresh(*, cluster_id: int) -> None:
    """Rewrite the cluster's queue reasons within `SCHEDULER_REASONS_SECONDS` (0: never)
    with a pass, after a decision without one left some stale. Coalesced: while a refresh
    is due, further requests join it, so a cluster gets at most one per that interval.

    With Redis, an rq scheduled job (`reasons_refresh_job`) that then asks for a merged
    pass as any change does (the merge window applies); without, a daemon timer in this
    process. Never a sleep."""
    seconds = settings.SCHEDULER_REASONS_SECONDS
    if seconds <= 0:
        return
    defer_once(
        key=REASONS_KEY.format(cluster_id=cluster_id),
        seconds=seconds,
        # Lives past the job's due time: a job lost on the way blocks refreshes that long.
        ttl_seconds=math.ceil(seconds) + PENDING_TTL_SECONDS,
        job=reasons_refresh_job,
        args=(cluster_id,),
        in_process=lambda: _refresh_in_process(cluster_id),
        meta=job_meta(),
    )


def _refresh_in_process(cluster_id: int) -> None:
    try:
        schedule_cluster(cluster_id=cluster_id, cause="")
    finally:
        db_connection.close()  # this thread's own connection


def dispatch_schedule(*, cluster_id: int, cause: str = "") -> None:
    if not settings.USE_RQ:
        schedule_cluster(cluster_id=cluster_id, cause=cause)
        return
    try:
        _enqueue_merged(cluster_id=cluster_id, cause=cause)
    except RedisError:
        # Redis is down: do the pass here rather than lose it. The safety net also
        # covers any trigger lost between the commit and this point.
        logger.warning("redis unavailable; scheduling in-process", extra={"cluster_id": cluster_id})
        schedule_cluster(cluster_id=cluster_id, cause=cause)


def _enqueue_merged(*, cluster_id: int, cause: str) -> None:
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


def request_dependencies_sweep(*, organization_id: int, after_pk: int) -> None:
    """Sweep the organization's pending deployments above `after_pk` once the current
    transaction commits: an RQ job with Redis, in-process otherwise (or if Redis is down;
    the safety net also sweeps whatever a lost request leaves)."""

    def dispatch() -> None:
        if settings.USE_RQ:
            try:
                django_rq.get_queue("default", connection=redis_connection()).enqueue(
                    dependencies_sweep_job, organization_id, after_pk, meta=job_meta()
                )
                return
            except RedisError:
                logger.warning("redis unavailable; sweeping dependencies in-process")
        dependencies_sweep(organization_id=organization_id, after_pk=after_pk)

    transaction.on_commit(dispatch)
