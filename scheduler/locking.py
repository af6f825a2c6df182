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
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from django.db import OperationalError

from clusters.models import Cluster
from deployments.models import Deployment, Status
from scheduler.allocation import Resources

T = TypeVar("T")
logger = logging.getLogger(__name__)

# What a pass reads of each row (snapshot, apply, events, metrics), in PassRow's order.
PASS_FIELDS = (
    "id",
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


@dataclass(slots=True)
class PassRow:
    """A queued or running deployment as a pass reads it: plain values, not a model.

    A pass reads every queued and running row of its cluster; building model instances
    for them was the largest part of a pass's Python time (docs/benchmarks.md).
    """

    id: int
    name: str
    cpu: int
    ram_mb: int
    gpu: int
    priority: int
    preemptible: bool
    status: str
    status_reason: str
    preemption_count: int
    queued_at: datetime | None
    started_at: datetime | None

    @property
    def pk(self) -> int:
        return self.id

    @property
    def resources(self) -> Resources:
        return Resources(self.cpu, self.ram_mb, self.gpu)


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


def lock_schedulable(cluster_id: int) -> list[PassRow]:
    """Lock a cluster's queued and running deployments in pk order (step 2).

    The caller must hold the cluster's lock: that is what keeps new starts on this
    cluster out while the pass plans.
    """
    rows = (
        Deployment.objects.select_for_update(no_key=True)
        .filter(cluster_id=cluster_id, status__in=[Status.QUEUED, Status.RUNNING])
        .order_by("pk")
        .values_list(*PASS_FIELDS)
    )
    return [PassRow(*row) for row in rows]


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
