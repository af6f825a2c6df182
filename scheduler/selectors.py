"""Reads of a cluster's queue, as the scheduler will consider it, at a cost that does not
grow with the queue: a page, a count, a position.

The order of consideration is the planner's (`planner.engine`'s job key): priority
descending; within a priority, starving deployments first, then `queued_at`, then id. A
deployment starves when it has waited longer than the cluster's limit, which makes the
starving ones a prefix of the `queued_at` order within their priority: the order is
simply `(-priority, queued_at, id)`, which a partial index on the queued rows serves.
Each queued deployment's `reason` is the one the last pass wrote (`status_reason`): the
pass explains the whole queue. Pending deployments follow, by priority then id, with the
live reason their dependencies give.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from clusters.models import Cluster
from deployments.conditions import pending_reason
from deployments.models import Deployment, Status
from deployments.selectors import prefetch_dependency_links

QUEUE_PAGE = 500  # the queue endpoint's default `limit`
QUEUE_PAGE_MAX = 5_000  # and its largest
QUEUED_ORDER = ("-priority", "queued_at", "id")  # index deployment_queue_order
PENDING_ORDER = ("-priority", "id")  # index deployment_pending_order


@dataclass(frozen=True)
class QueueItem:
    position: int
    deployment: Deployment
    reason: str
    reserved: bool


@dataclass(frozen=True)
class QueuePage:
    """`items` from position `offset + 1` on; `total` deployments wait in all."""

    items: list[QueueItem]
    total: int


def _queued(cluster_id: int) -> QuerySet[Deployment]:
    return Deployment.objects.filter(cluster_id=cluster_id, status=Status.QUEUED)


def _pending(cluster_id: int) -> QuerySet[Deployment]:
    return Deployment.objects.filter(cluster_id=cluster_id, status=Status.PENDING)


def cluster_queue(*, cluster: Cluster, offset: int = 0, limit: int = QUEUE_PAGE) -> QueuePage:
    """Up to `limit` waiting deployments of the cluster from position `offset + 1`, in
    the order the scheduler considers them (`queued`, then `pending`), and how many wait.

    At most five queries whatever the queue holds: the counts, the page's queued rows,
    and its pending rows with their dependency links (three).
    """
    counts = Deployment.objects.filter(
        cluster_id=cluster.pk, status__in=[Status.QUEUED, Status.PENDING]
    ).aggregate(
        queued=Count("pk", filter=Q(status=Status.QUEUED)),
        total=Count("pk"),
    )
    queued_total, total = counts["queued"], counts["total"]
    now = timezone.now()
    items: list[QueueItem] = []
    if offset < queued_total:
        rows = _queued(cluster.pk).order_by(*QUEUED_ORDER)[offset : offset + limit]
        items = [
            QueueItem(position, d, d.status_reason, _reserved(cluster, d, now))
            for position, d in enumerate(rows, start=offset + 1)
        ]
    room = limit - len(items)
    if room > 0 and offset + len(items) < total:
        begin = max(0, offset - queued_total)
        rows = list(_pending(cluster.pk).order_by(*PENDING_ORDER)[begin : begin + room])
        prefetch_dependency_links(rows)
        items += [
            QueueItem(position, d, pending_reason(d), False)
            for position, d in enumerate(rows, start=queued_total + begin + 1)
        ]
    return QueuePage(items=items, total=total)


def queue_position(*, deployment: Deployment) -> QueueItem | None:
    """The deployment's place in its cluster's queue (None unless it waits), counted by
    the order's key: two index range counts, not a read of the queue."""
    cluster = deployment.cluster
    if deployment.status == Status.QUEUED:
        ahead = (
            _queued(cluster.pk)
            .filter(
                Q(priority__gt=deployment.priority)
                | Q(priority=deployment.priority, queued_at__lt=deployment.queued_at)
                | Q(
                    priority=deployment.priority,
                    queued_at=deployment.queued_at,
                    pk__lt=deployment.pk,
                )
            )
            .count()
        )
        reserved = _reserved(cluster, deployment, timezone.now())
        return QueueItem(ahead + 1, deployment, deployment.status_reason, reserved)
    if deployment.status == Status.PENDING:
        ahead = _queued(cluster.pk).count() + (
            _pending(cluster.pk)
            .filter(
                Q(priority__gt=deployment.priority)
                | Q(priority=deployment.priority, pk__lt=deployment.pk)
            )
            .count()
        )
        return QueueItem(ahead + 1, deployment, pending_reason(deployment), False)
    return None


def _reserved(cluster: Cluster, deployment: Deployment, now: datetime) -> bool:
    """Whether it holds a starvation reservation: it has waited past the cluster's limit
    and could ever fit (the planner's `starving and possible`)."""
    limit = cluster.starvation_after_seconds
    return (
        limit is not None
        and now - deployment.queued_at > timedelta(seconds=limit)
        and deployment.resources.fits_in(cluster.capacity)
    )
