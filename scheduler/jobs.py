"""RQ entry points. They take ids, re-read everything, and call one service each.

Jobs may run twice (a worker killed mid-job is retried): a pass is idempotent.
"""

from __future__ import annotations

from clusters.models import Cluster
from ops.requestid import restored_from_job
from scheduler.services import PassResult, schedule_cluster
from scheduler.triggers import PENDING_KEY, redis_connection


def schedule_cluster_job(cluster_id: int, cause: str = "") -> dict:
    with restored_from_job():  # log lines carry the id of the request that asked
        redis_connection().delete(PENDING_KEY.format(cluster_id=cluster_id))
        return _summary(schedule_cluster(cluster_id=cluster_id, cause=cause))


def safety_net_job() -> list[dict]:
    """Pass over every cluster: repairs anything a lost trigger left behind."""
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
