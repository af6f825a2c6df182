"""`request_runtime_work`: the one way to ask for a cluster's runtime work (starts, stops,
reconciliation; `scheduler.lifecycle`), after commit and outside every lock.

- With `REDIS_URL`: an RQ job, merged per cluster while one waits (like passes). While
  workloads run or start, a follow-up reconciliation of their runtime is scheduled every
  `RUNTIME_WATCH_SECONDS` (rq's scheduler: `rqworker --with-scheduler`), so an exit, or
  the engine running a start it had queued (Slurm), is noticed within that time; the
  safety-net pass reconciles every runtime too.
- Embedded (no Redis): in-process, right after the pass that asked (the HTTP answer
  already shows `running`, or `failed` with the engine's words; on Slurm `starting`
  while the job is PENDING); a daemon timer watches starting and running workloads
  every `RUNTIME_WATCH_SECONDS` (0: no timer).
"""

from __future__ import annotations

import logging
import threading

import django_rq
from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from redis.exceptions import RedisError

from clusters.models import Cluster
from deployments.models import Deployment, Status
from scheduler.lifecycle import drive_cluster, reconcile_runtime
from scheduler.merging import defer_once, redis_connection

logger = logging.getLogger(__name__)

PENDING_KEY = "hv:runtime-pending:{cluster_id}"
WATCH_KEY = "hv:runtime-watch:{runtime_id}"
PENDING_TTL_SECONDS = 60

_local = threading.local()


def request_runtime_work(*, cluster_id: int) -> None:
    """Ask for the cluster's runtime work once the current transaction commits."""
    transaction.on_commit(lambda: dispatch_runtime_work(cluster_id=cluster_id))


def dispatch_runtime_work(*, cluster_id: int) -> None:
    if settings.USE_RQ:
        try:
            _enqueue_merged(cluster_id)
            return
        except RedisError:
            logger.warning(
                "redis unavailable; runtime work in-process", extra={"cluster_id": cluster_id}
            )
    run_runtime_work(cluster_id=cluster_id)


def _enqueue_merged(cluster_id: int) -> None:
    connection = redis_connection()
    key = PENDING_KEY.format(cluster_id=cluster_id)
    if connection.set(key, "1", nx=True, ex=PENDING_TTL_SECONDS):
        try:
            django_rq.get_queue("default", connection=connection).enqueue(
                "scheduler.jobs.runtime_work_job", cluster_id
            )
        except RedisError:
            connection.delete(key)
            raise


def clear_pending(cluster_id: int) -> None:
    """The job took the request: later ones enqueue anew."""
    redis_connection().delete(PENDING_KEY.format(cluster_id=cluster_id))


def run_runtime_work(*, cluster_id: int) -> None:
    """Drive the cluster, then reconcile its runtime, then keep watching what runs.

    In-process, a report made while driving runs a pass, which may ask for this very
    cluster's work again: that request is remembered and served by the loop here rather
    than by a nested drive.
    """
    active: dict[int, bool] = _local.__dict__.setdefault("active", {})
    if cluster_id in active:
        active[cluster_id] = True
        return
    active[cluster_id] = False
    try:
        while True:
            drive_cluster(cluster_id=cluster_id)
            if not active[cluster_id]:
                break
            active[cluster_id] = False
    finally:
        del active[cluster_id]
    runtime_id = Cluster.objects.filter(pk=cluster_id).values_list("runtime_id", flat=True).first()
    if runtime_id is not None:
        reconcile_runtime(runtime_id=runtime_id)
        watch_runtime(runtime_id=runtime_id)


def watch_runtime(*, runtime_id: int) -> None:
    """While the runtime runs deployments, or holds starts in its own queue (a Slurm job
    PENDING), reconcile it again in a few seconds."""
    seconds = settings.RUNTIME_WATCH_SECONDS
    watched = Deployment.objects.filter(
        cluster__runtime_id=runtime_id, status__in=[Status.STARTING, Status.RUNNING]
    )
    if seconds <= 0 or not watched.exists():
        return
    defer_once(
        key=WATCH_KEY.format(runtime_id=runtime_id),
        seconds=seconds,
        ttl_seconds=max(1, round(seconds)),
        job="scheduler.jobs.watch_runtime_job",
        args=(runtime_id,),
        in_process=lambda: _watch_in_process(runtime_id),
    )


def _watch_in_process(runtime_id: int) -> None:
    try:
        reconcile_runtime(runtime_id=runtime_id)
        watch_runtime(runtime_id=runtime_id)
    finally:
        db_connection.close()  # this thread's own connection


def runtime_clusters_with_work() -> list[int]:
    """Clusters with a runtime and a deployment starting or stopping."""
    busy = Deployment.objects.filter(
        cluster__runtime__isnull=False, status__in=[Status.STARTING, Status.STOPPING]
    )
    return sorted(set(busy.values_list("cluster_id", flat=True)))
