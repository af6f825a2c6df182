"""The scheduling pass: lock, snapshot, plan, apply, all in one transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from clusters.models import Cluster
from deployments.models import Deployment, DeploymentEvent, Status
from scheduler import allocation
from scheduler.allocation import ClusterSnapshot, Plan, Policy, Resources
from scheduler.locking import PassRow, lock_cluster, lock_schedulable, retry_on_contention

logger = logging.getLogger(__name__)

# Sent after a pass commits, with `result` (a PassResult) and `seconds` (its duration).
# `ops` observes it for metrics; the scheduler knows nothing of who listens.
pass_finished = Signal()


@dataclass
class PassResult:
    """What one pass changed on one cluster."""

    cluster_id: int
    started: list[int] = field(default_factory=list)
    preempted: list[tuple[int, int]] = field(default_factory=list)  # (victim, preemptor)
    waiting: int = 0
    # (priority, seconds from queued_at to start) of each deployment started.
    waits: list[tuple[int, float]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.started or self.preempted)


def snapshot_of(cluster: Cluster, rows: Sequence[Deployment | PassRow], *, now) -> ClusterSnapshot:
    """The planner's view of a cluster and its queued and running deployments."""
    running = tuple(
        allocation.RunningDeployment(
            id=d.pk,
            resources=d.resources,
            priority=d.priority,
            preemptible=d.preemptible,
            started_at=d.started_at,
            queued_at=d.queued_at,
        )
        for d in rows
        if d.status == Status.RUNNING
    )
    waiting = tuple(
        allocation.WaitingDeployment(
            id=d.pk,
            resources=d.resources,
            priority=d.priority,
            preemptible=d.preemptible,
            queued_at=d.queued_at,
        )
        for d in rows
        if d.status == Status.QUEUED
    )
    return ClusterSnapshot(
        capacity=cluster.capacity,
        running=running,
        waiting=waiting,
        now=now,
        policy=Policy(cluster.policy),
        starvation_after_seconds=cluster.starvation_after_seconds,
    )


def schedule_cluster(*, cluster_id: int, cause: str = "") -> PassResult:
    """Run one scheduling pass over a cluster and commit its outcome.

    Idempotent: a pass over an unchanged cluster plans nothing and writes nothing but
    changed queue reasons. `cause` (e.g. "deployment 12 completed") is named in the
    events of deployments that start because of it.
    """
    return retry_on_contention(lambda: _schedule_cluster_once(cluster_id=cluster_id, cause=cause))


def _schedule_cluster_once(*, cluster_id: int, cause: str) -> PassResult:
    began = time.monotonic()
    # durable: a pass is a top-level action; nesting it in a caller's transaction would
    # hold the cluster lock for the caller's whole transaction and apply before it commits.
    with transaction.atomic(durable=True):
        cluster = lock_cluster(cluster_id)  # lock order step 1
        if cluster is None:
            return PassResult(cluster_id=cluster_id)
        rows = lock_schedulable(cluster_id)  # lock order step 2
        now = timezone.now()
        plan = allocation.plan(snapshot_of(cluster, rows, now=now))
        _apply(cluster, rows, plan, now=now, cause=cause)
    result = PassResult(
        cluster_id=cluster_id,
        started=[s.deployment_id for s in plan.starts],
        preempted=[(p.victim_id, p.preemptor_id) for p in plan.preemptions],
        waiting=len(plan.queue),
        waits=_queue_waits(rows, plan, now=now),
    )
    pass_finished.send(sender=PassResult, result=result, seconds=time.monotonic() - began)
    if result.changed:
        logger.info(
            "scheduling pass",
            extra={
                "cluster_id": cluster_id,
                "started": result.started,
                "preempted": result.preempted,
                "waiting": result.waiting,
            },
        )
    return result


def _queue_waits(rows: list[PassRow], plan: Plan, *, now) -> list[tuple[int, float]]:
    """(priority, seconds since queued_at) of each deployment the plan started."""
    by_id = {d.pk: d for d in rows}
    started = [by_id[s.deployment_id] for s in plan.starts]
    return [(d.priority, (now - d.queued_at).total_seconds()) for d in started]


def _start_reason(start: allocation.Start, cause: str) -> str:
    if start.preempted:
        victims = ", ".join(str(v) for v in start.preempted)
        return f"started after preempting lower-priority deployment(s) {victims}"
    return f"started in the room made by {cause}" if cause else "started: it fits in the free room"


def _apply(cluster: Cluster, rows: list[PassRow], plan: Plan, *, now, cause: str) -> None:
    """Write the plan: statuses, the allocated counters, events and queue reasons.

    Set-based: one UPDATE for the victims, one for the starts and one per distinct new
    queue reason (a pass changes few, and identical situations share a sentence).
    ``bulk_update`` would build a CASE over every changed row, which PostgreSQL evaluates
    per row: quadratic, minutes for a first pass over 10,000 waiting.
    """
    by_id = {d.pk: d for d in rows}
    events: list[DeploymentEvent] = []
    victims: dict[int, PassRow] = {}
    for preemption in plan.preemptions:
        victim, preemptor = by_id[preemption.victim_id], by_id[preemption.preemptor_id]
        victim.status, victim.started_at = Status.QUEUED, None
        victim.preemption_count += 1
        reason = (
            f"preempted by deployment {preemptor.pk} ({preemptor.name}, priority "
            f"{preemptor.priority}); back in the queue at its original place"
        )
        events.append(_event(victim, Status.RUNNING, Status.QUEUED, reason, now, preemptor))
        victims[victim.pk] = victim
    for start in plan.starts:
        deployment = by_id[start.deployment_id]
        deployment.status, deployment.started_at = Status.RUNNING, now
        deployment.status_reason = ""
        events.append(
            _event(
                deployment, Status.QUEUED, Status.RUNNING, _start_reason(start, cause), now, None
            )
        )
    reasons: dict[str, list[int]] = {}
    for entry in plan.queue:
        deployment = by_id[entry.deployment_id]
        if deployment.status_reason != entry.reason:
            deployment.status_reason = entry.reason
            reasons.setdefault(entry.reason, []).append(deployment.pk)
    _update(
        list(victims),
        status=Status.QUEUED,
        started_at=None,
        preemption_count=F("preemption_count") + 1,
        updated_at=now,
    )
    _update(
        [s.deployment_id for s in plan.starts],
        status=Status.RUNNING,
        started_at=now,
        status_reason="",
        updated_at=now,
    )
    for reason, ids in reasons.items():
        _update(ids, status_reason=reason, updated_at=now)
    DeploymentEvent.objects.bulk_create(events)
    _store_allocated(cluster, rows)


_UPDATE_BATCH = 10_000  # ids per UPDATE: PostgreSQL takes at most 65,535 parameters


def _update(ids: list[int], **values) -> None:
    """Set ``values`` on the deployments ``ids``, one UPDATE per batch."""
    for begin in range(0, len(ids), _UPDATE_BATCH):
        Deployment.objects.filter(pk__in=ids[begin : begin + _UPDATE_BATCH]).update(**values)


def _store_allocated(cluster: Cluster, rows: list[PassRow]) -> None:
    """Recompute the counters from the running set; the CHECK constraints refuse overflow."""
    allocated = sum((d.resources for d in rows if d.status == Status.RUNNING), start=Resources())
    if allocated != cluster.allocated:
        cluster.set_allocated(allocated)
        cluster.save(update_fields=["allocated_cpu", "allocated_ram_mb", "allocated_gpu"])


def _event(
    deployment: PassRow,
    from_status: Status,
    to_status: Status,
    reason: str,
    at,
    related: PassRow | None,
) -> DeploymentEvent:
    return DeploymentEvent(
        deployment_id=deployment.pk,
        at=at,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        actor=None,
        related_deployment_id=related.pk if related else None,
    )
