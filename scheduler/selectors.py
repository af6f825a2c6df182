"""Reads that ask the planner: the queue of a cluster, as the scheduler will consider it."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

import planner
from clusters.models import Cluster
from deployments.conditions import pending_reason
from deployments.locking import DeploymentRow
from deployments.models import HOLDS_ROOM, Deployment, Status
from deployments.selectors import prefetch_dependency_links
from scheduler.services import snapshot_of


@dataclass(frozen=True)
class QueueItem:
    position: int
    deployment: Deployment
    reason: str
    reserved: bool


def cluster_queue(*, cluster: Cluster) -> list[QueueItem]:
    """Every waiting deployment of the cluster in the order the scheduler considers them.

    Queued deployments come from the same planner that schedules (a plan over the
    current state; after a pass it starts nothing, so its queue is the queue). Pending
    ones follow, by priority then age: they enter the planner's order when their
    dependencies are met.
    """
    rows = list(
        Deployment.objects.filter(
            cluster=cluster, status__in=[Status.PENDING, Status.QUEUED, *HOLDS_ROOM]
        ).order_by("pk")
    )
    prefetch_dependency_links(rows)
    schedulable = [d for d in rows if d.status != Status.PENDING]
    snapshot = snapshot_of(cluster, [DeploymentRow.of(d) for d in schedulable], now=timezone.now())
    plan = planner.plan(snapshot)
    by_id = {d.pk: d for d in rows}
    items = [
        QueueItem(entry.position, by_id[entry.deployment_id], entry.reason, entry.reserved)
        for entry in plan.queue
        if by_id[entry.deployment_id].status == Status.QUEUED
    ]
    pending = sorted(
        (d for d in rows if d.status == Status.PENDING), key=lambda d: (-d.priority, d.pk)
    )
    items += [
        QueueItem(len(items) + i, d, pending_reason(d), False) for i, d in enumerate(pending, 1)
    ]
    return items
