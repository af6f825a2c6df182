"""The scheduling pass: lock, snapshot, plan, apply, all in one transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

import planner
from clusters.locking import lock_cluster
from clusters.models import Cluster
from deployments.locking import DeploymentRow, lock_schedulable
from deployments.models import Status
from deployments.statemachine import (
    Change,
    Lifecycle,
    SchedulerAction,
    lifecycle_of,
    transition_bulk,
)
from deployments.statemachine import update_rows as update_deployments
from hypervisor.contention import retry_on_contention
from hypervisor.resources import Resources
from planner import ClusterSnapshot, Plan, Policy
from scheduler.runtimeplan import runtime_plan
from scheduler.runtimework import request_runtime_work

logger = logging.getLogger(__name__)
_RUNTIME_WORK = (Status.STARTING, Status.STOPPING)

# Sent after a pass commits, with `result` (a PassResult) and `seconds` (its duration).
# `ops` observes it for metrics; the scheduler knows nothing of who listens.
pass_finished = Signal()

FITS_REASON = "started: it fits in the free room"  # the event of a start that preempted none


@dataclass
class PassResult:
    """What one pass changed on one cluster."""

    cluster_id: int
    started: list[int] = field(default_factory=list)
    preempted: list[tuple[int, int]] = field(default_factory=list)  # (victim, preemptor)
    waiting: int = 0
    # (priority, seconds from queued_at to start) of each deployment started.
    waits: list[tuple[int, float]] = field(default_factory=list)
    # How it was decided: "pass" (the whole queue), or by scheduler.incremental:
    # "arrival" (a create placed alone), "bounded" (the deployments that could use the room).
    path: str = "pass"

    @property
    def changed(self) -> bool:
        return bool(self.started or self.preempted)


def snapshot_of(cluster: Cluster, rows: Sequence[DeploymentRow], *, now) -> ClusterSnapshot:
    """The planner's view of a cluster and its queued and room-holding deployments.

    `starting` counts as running (it may be preempted); a `stopping` deployment is
    neither: its room is simply not there until its runtime confirms the stop.
    """
    running = tuple(
        planner.RunningDeployment(
            id=d.id,
            resources=d.resources,
            priority=d.priority,
            preemptible=d.preemptible,
            started_at=d.started_at,
            queued_at=d.queued_at,
        )
        for d in rows
        if d.status in (Status.STARTING, Status.RUNNING)
    )
    waiting = tuple(
        planner.WaitingDeployment(
            id=d.id,
            resources=d.resources,
            priority=d.priority,
            preemptible=d.preemptible,
            queued_at=d.queued_at,
        )
        for d in rows
        if d.status == Status.QUEUED
    )
    stopping = Resources.total(d.resources for d in rows if d.status == Status.STOPPING)
    return ClusterSnapshot(
        capacity=cluster.capacity - stopping,
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
        plan = planner.plan(snapshot_of(cluster, rows, now=now))
        apply_plan(cluster, rows, plan, now=now, cause=cause)
        if cluster.runtime_id is not None and any(r.status in _RUNTIME_WORK for r in rows):
            # On commit, outside the locks: the runtime starts and stops them.
            request_runtime_work(cluster_id=cluster_id)
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


def _queue_waits(rows: list[DeploymentRow], plan: Plan, *, now) -> list[tuple[int, float]]:
    """(priority, seconds since queued_at) of each deployment the plan started."""
    by_id = {d.id: d for d in rows}
    started = [by_id[s.deployment_id] for s in plan.starts]
    return [(d.priority, (now - d.queued_at).total_seconds()) for d in started]


def _start_reason(start: planner.Start, cause: str) -> str:
    if start.preempted:
        victims = ", ".join(str(v) for v in start.preempted)
        return f"started after preempting lower-priority deployment(s) {victims}"
    return f"started in the room made by {cause}" if cause else FITS_REASON


def apply_plan(cluster: Cluster, rows: list[DeploymentRow], plan: Plan, *, now, cause: str) -> None:
    """Write the plan through the state machine's bulk form, then the queue reasons
    (one UPDATE per distinct new reason: a pass changes few, and identical situations
    share a sentence). `rows`: every room-holding row of the cluster and every row the
    plan names, locked (`scheduler.incremental` plans over part of the queue)."""
    by_id = {d.id: d for d in rows}
    lifecycle = lifecycle_of(cluster)
    if lifecycle == Lifecycle.RUNTIME:
        plan = runtime_plan(cluster, plan, by_id)
    changes = []
    for preemption in plan.preemptions:
        preemptor = by_id[preemption.preemptor_id]
        reason = (
            f"preempted by deployment {preemptor.id} ({preemptor.name}, priority "
            f"{preemptor.priority}); back in the queue at its original place"
        )
        changes.append(Change(preemption.victim_id, SchedulerAction.PREEMPT, reason, preemptor.id))
    for start in plan.starts:
        changes.append(
            Change(start.deployment_id, SchedulerAction.START, _start_reason(start, cause))
        )
    transition_bulk(cluster=cluster, rows=rows, changes=changes, lifecycle=lifecycle, now=now)
    reasons: dict[str, list[int]] = {}
    for entry in plan.queue:
        deployment = by_id[entry.deployment_id]
        if deployment.status_reason != entry.reason:
            deployment.status_reason = entry.reason
            reasons.setdefault(entry.reason, []).append(deployment.id)
    for reason, ids in reasons.items():
        update_deployments(ids, status_reason=reason, updated_at=now)
