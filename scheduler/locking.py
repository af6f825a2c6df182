"""Row locks for scheduling, gathered in one place so that the lock order is visible.

THE LOCK ORDER (every transaction that takes more than one lock follows it):
  1. cluster rows, by ascending pk;
  2. then deployment rows, by ascending pk.
A transaction never takes a cluster lock after a deployment lock. Dependencies always
have a smaller pk than their dependents, so a cascade that locks dependents after their
dependency also locks in ascending pk order.

Locks are `FOR NO KEY UPDATE`: they serialize writers to the same row, but do not block
inserts that merely reference the row by foreign key (a new deployment on a locked
cluster, a dependency on a locked deployment), which take `FOR KEY SHARE`.

On SQLite (the embedded default) row locks do not exist; every transaction there is
`BEGIN IMMEDIATE`, which serializes writers for the whole database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import OperationalError

from clusters.models import Cluster
from deployments.models import Deployment, Status

T = TypeVar("T")
logger = logging.getLogger(__name__)

# What a pass reads of each row (snapshot, apply, events, metrics). Loading only these
# cuts a fifth of a steady pass over 1,000 waiting (docs/benchmarks.md); a field used
# by the pass but missing here would cost a query per row, which the tests would show.
PASS_FIELDS = (
    "id",
    "cluster_id",
    "name",
    "cpu",
    "ram_mb",
    "gpu",
    "priority",
    "preemptible",
    "status",
    "status_reason",
    "preemption_count",
    "queued_at",
    "started_at",
)

# PostgreSQL error codes that mean "another transaction was in the way; try again".
RETRYABLE_PGCODES = frozenset({"40P01", "40001", "55P03"})  # deadlock, serialization, lock timeout


def lock_cluster(cluster_id: int) -> Cluster | None:
    """Lock one cluster row (step 1 of the lock order); None if it no longer exists."""
    return Cluster.objects.select_for_update(no_key=True).filter(pk=cluster_id).first()


def lock_clusters(cluster_ids: Iterable[int]) -> list[Cluster]:
    """Lock several cluster rows in ascending pk order (step 1 of the lock order)."""
    return list(
        Cluster.objects.select_for_update(no_key=True)
        .filter(pk__in=set(cluster_ids))
        .order_by("pk")
    )


def lock_schedulable(cluster_id: int) -> list[Deployment]:
    """Lock a cluster's queued and running deployments in pk order (step 2).

    The caller must hold the cluster's lock: that is what keeps new starts on this
    cluster out while the pass plans.
    """
    return list(
        Deployment.objects.select_for_update(no_key=True)
        .filter(cluster_id=cluster_id, status__in=[Status.QUEUED, Status.RUNNING])
        .only(*PASS_FIELDS)
        .order_by("pk")
    )


def lock_deployments(deployment_ids: Iterable[int]) -> list[Deployment]:
    """Lock deployment rows in ascending pk order (step 2 of the lock order)."""
    ids = set(deployment_ids)
    if not ids:
        # Most creates have no dependencies: building the query to find that the id
        # list is empty would cost a create a millisecond.
        return []
    return list(
        Deployment.objects.select_for_update(no_key=True, of=("self",))
        .select_related("cluster")
        .filter(pk__in=ids)
        .order_by("pk")
    )


def _pgcode(error: OperationalError) -> str | None:
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def retry_on_contention(fn: Callable[[], T], *, attempts: int = 5) -> T:
    """Run `fn` (which owns its transaction) again after a deadlock or lock timeout.

    With the single lock order a deadlock should not happen; lock timeouts can, under
    heavy load, and the action is safe to retry because its transaction rolled back.
    """
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as error:
            code = _pgcode(error)
            if code not in RETRYABLE_PGCODES or attempt == attempts - 1:
                raise
            logger.warning("retrying after contention", extra={"pgcode": code, "attempt": attempt})
            time.sleep(0.05 * (2**attempt))
    raise AssertionError("unreachable")
