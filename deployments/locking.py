"""Deployment row locks (step 2 of the lock order written in `clusters.locking`), and
the plain rows a scheduling pass reads under them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models.expressions import RawSQL

from deployments.models import HOLDS_ROOM, Deployment, Status
from hypervisor.resources import NAMES, Resources

# What a pass reads of each row (snapshot, apply, events, metrics), in DeploymentRow's order.
ROW_FIELDS = (
    "id",
    "name",
    *NAMES,  # read into one Resources
    "priority",
    "preemptible",
    "status",
    "status_reason",
    "preemption_count",
    "queued_at",
    "started_at",
)


@dataclass(slots=True)
class DeploymentRow:
    """A queued or room-holding deployment as a pass reads it: plain values, not a model.

    A pass reads every such row of its cluster; building model instances for them was
    the largest part of a pass's Python time (docs/benchmarks.md). The planner's
    snapshot and the state machine's bulk form take these rows, never model instances.
    """

    id: int
    name: str
    resources: Resources
    priority: int
    preemptible: bool
    status: str
    status_reason: str
    preemption_count: int
    queued_at: datetime | None
    started_at: datetime | None

    @classmethod
    def of(cls, deployment: Deployment) -> DeploymentRow:
        """The row of a deployment already read as a model instance."""
        return cls.from_values([getattr(deployment, name) for name in ROW_FIELDS])

    @classmethod
    def from_values(cls, row: Sequence) -> DeploymentRow:
        """The row of a ``values_list(*ROW_FIELDS)`` result."""
        return cls(row[0], row[1], Resources(*row[2:_AFTER_RESOURCES]), *row[_AFTER_RESOURCES:])


_AFTER_RESOURCES = 2 + len(NAMES)


def lock_schedulable(cluster_id: int) -> list[DeploymentRow]:
    """Lock a cluster's queued and room-holding deployments in pk order (step 2).

    The caller must hold the cluster's lock: that is what keeps new starts on this
    cluster out while the pass plans.
    """
    rows = (
        Deployment.objects.select_for_update(no_key=True)
        .filter(cluster_id=cluster_id, status__in=[Status.QUEUED, *HOLDS_ROOM])
        .order_by("pk")
        .annotate(**_EPOCHS)
        .values_list(*_FIELDS_BY_EPOCH)
    )
    return [
        DeploymentRow.from_values((*row[:-2], _datetime(row[-2]), _datetime(row[-1])))
        for row in rows
    ]


# A pass reads every queued row: the timestamps come as seconds since the epoch, which
# psycopg loads in C, not as text that Django's timestamptz loader parses in Python
# (4 of a steady pass's 16 ms of CPU at 1,000 waiting). A float64 holds today's epoch
# to a quarter of a microsecond, so the round trip is exact at PostgreSQL's microseconds.
_TIMESTAMPS = ("queued_at", "started_at")
assert ROW_FIELDS[-2:] == _TIMESTAMPS
_EPOCHS = {
    f"{name}_epoch": RawSQL(f'EXTRACT(EPOCH FROM "deployments_deployment"."{name}")::float8', ())
    for name in _TIMESTAMPS
}
_FIELDS_BY_EPOCH = (*ROW_FIELDS[:-2], *_EPOCHS)


def _datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


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
