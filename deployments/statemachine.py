"""The deployment state machine: every status change, by every actor, goes through here.

    pending --release--> queued --start--> (starting) --started--> running
       |                   |  |                    |                     |
       | abandon, cancel   |  | cancel             +--- preempt, complete, fail, cancel
       v                   |  v                    v
    cancelled              +-------- (stopping) --stopped--> queued / completed / failed / cancelled
    (in parentheses: held only on a cluster whose runtime confirms; see below)

Actors and their actions (RULES below is the whole table):
- people: complete, fail, cancel (`deployments.services.deployment_act`);
- dependency resolution: release (dependencies met) and abandon (one became impossible);
- the scheduler: start and preempt, applied from a pass's plan with the bulk form;
- a runtime (issue 13): started, stopped, exited_ok, exited_error: the confirmations.

`starting`, `running` and `stopping` hold room: a cluster's `allocated` is the sum of
their requests, and it is written here only (`_store_allocated`). Every event is built
here only (`_event`).

Two-step transitions: a start goes through `starting`, a stop of a deployment that holds
room (preempt; complete, fail or cancel by a person) through `stopping`. On a `manual`
cluster (no runtime: nothing to start or stop) both steps happen in the same transition
and one event goes from the source status to the final one, as before these statuses
existed. On a cluster whose runtime confirms (`Lifecycle.RUNTIME`), the deployment stays
in `starting` or `stopping`, holding its room, until the runtime reports `started` or
`stopped`; `stopping_to` remembers where a stop leads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F
from django.utils import timezone

from clusters.models import ALLOCATED_FIELDS, Cluster
from deployments.locking import DeploymentRow
from deployments.models import FINISHED, HOLDS_ROOM, Deployment, DeploymentEvent, Status
from hypervisor.exceptions import Conflict
from hypervisor.resources import Resources


class InvalidTransition(Conflict):
    """The deployment's current status does not allow the action (409)."""

    code = "invalid_transition"


class Action(StrEnum):
    """What people do (the API's verbs)."""

    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"


class DependencyAction(StrEnum):
    RELEASE = "release"  # every condition met
    ABANDON = "abandon"  # a condition can never be met


class SchedulerAction(StrEnum):
    START = "start"
    PREEMPT = "preempt"


class RuntimeAction(StrEnum):
    """What a runtime confirms or reports (issue 13)."""

    STARTED = "started"
    STOPPED = "stopped"
    EXITED_OK = "exited_ok"
    EXITED_ERROR = "exited_error"


AnyAction = Action | DependencyAction | SchedulerAction | RuntimeAction


class Lifecycle(StrEnum):
    """Who carries out a cluster's starts and stops."""

    MANUAL = "manual"  # nobody: `starting` and `stopping` pass at once
    RUNTIME = "runtime"  # a runtime, which confirms each start and stop


@dataclass(frozen=True)
class Rule:
    """From which statuses an action may be taken, and where it leads.

    `through` is the status held while a runtime carries the action out: `starting`
    for a start; `stopping` for an action that ends or requeues a deployment that holds
    room. It is skipped on a manual cluster. `target` None (only for `stopped`) means the
    deployment's own `stopping_to`.
    """

    sources: frozenset[Status]
    target: Status | None
    through: Status | None = None


_PLACED = frozenset({Status.STARTING, Status.RUNNING})
RULES: dict[AnyAction, Rule] = {
    Action.COMPLETE: Rule(_PLACED, Status.COMPLETED, Status.STOPPING),
    Action.FAIL: Rule(_PLACED, Status.FAILED, Status.STOPPING),
    Action.CANCEL: Rule(
        frozenset({Status.PENDING, Status.QUEUED, *_PLACED}),
        Status.CANCELLED,
        Status.STOPPING,
    ),
    DependencyAction.RELEASE: Rule(frozenset({Status.PENDING}), Status.QUEUED),
    DependencyAction.ABANDON: Rule(frozenset({Status.PENDING}), Status.CANCELLED),
    SchedulerAction.START: Rule(frozenset({Status.QUEUED}), Status.RUNNING, Status.STARTING),
    SchedulerAction.PREEMPT: Rule(_PLACED, Status.QUEUED, Status.STOPPING),
    RuntimeAction.STARTED: Rule(frozenset({Status.STARTING}), Status.RUNNING),
    RuntimeAction.STOPPED: Rule(frozenset({Status.STOPPING}), None),
    RuntimeAction.EXITED_OK: Rule(_PLACED, Status.COMPLETED),
    RuntimeAction.EXITED_ERROR: Rule(_PLACED, Status.FAILED),
}


@dataclass(frozen=True)
class Step:
    """Where one action takes one deployment: `status` now, `stopping_to` if stopping."""

    source: Status
    status: Status
    stopping_to: str = ""


def step(action: AnyAction, current: str, *, lifecycle: Lifecycle, stopping_to: str = "") -> Step:
    """The status `action` leads to from `current`; `InvalidTransition` if it may not."""
    rule = RULES[action]
    if current not in rule.sources:
        raise InvalidTransition(
            f"Cannot {action} a deployment that is {current}; "
            f"{action} applies to {', '.join(sorted(rule.sources))}."
        )
    target = Status(rule.target or stopping_to)
    held = rule.through == Status.STARTING or current in HOLDS_ROOM
    if lifecycle == Lifecycle.RUNTIME and rule.through is not None and held:
        if rule.through == Status.STOPPING:
            return Step(Status(current), Status.STOPPING, target)
        return Step(Status(current), rule.through)
    return Step(Status(current), target)


def lifecycle_of(cluster: Cluster) -> Lifecycle:
    """Who starts and stops the cluster's deployments: its runtime when it has one
    (which confirms each start and stop), else nobody (manual)."""
    return Lifecycle.RUNTIME if cluster.runtime_id is not None else Lifecycle.MANUAL


# --- the single form: one deployment, under its lock ---------------------------------


def transition(
    deployment: Deployment,
    action: AnyAction,
    *,
    cluster: Cluster,
    reason: str,
    lifecycle: Lifecycle,
    actor: AbstractBaseUser | None = None,
    related_id: int | None = None,
) -> Step:
    """Apply `action` to one deployment: its row, its event, the cluster's `allocated`.

    The caller holds the locks (`clusters.locking`): the cluster's when room may change,
    then the deployment's. `reason` becomes the deployment's status reason too.
    """
    now = timezone.now()
    moved = step(action, deployment.status, lifecycle=lifecycle, stopping_to=deployment.stopping_to)
    values = _row_values(action, moved, now=now)
    if "preemption_count" in values:
        deployment.preemption_count += 1
        values["preemption_count"] = deployment.preemption_count
    values["status_reason"] = reason
    for name, value in values.items():
        setattr(deployment, name, value)
    deployment.save(update_fields=[*values, "updated_at"])
    actor_id = actor.pk if actor is not None else None
    _event(deployment.pk, moved.source, moved.status, reason, now, actor_id, related_id).save()
    if (moved.source in HOLDS_ROOM) != (moved.status in HOLDS_ROOM):
        sign = 1 if moved.status in HOLDS_ROOM else -1
        _store_allocated(cluster, _shifted(cluster.allocated, deployment.resources, sign))
    return moved


def record_created(deployment: Deployment, *, actor: AbstractBaseUser, at: datetime) -> None:
    """The first event of a new deployment: from nothing to `pending` or `queued`."""
    _event(deployment.pk, "", deployment.status, "created", at, actor.pk, None).save()


# --- the bulk form: a scheduling pass's plan -------------------------------------------


@dataclass(frozen=True)
class Change:
    """One action of a pass's plan, on one of the rows it holds locked."""

    deployment_id: int
    action: SchedulerAction
    reason: str
    related_id: int | None = None  # the preemptor of a victim


def transition_bulk(
    *,
    cluster: Cluster,
    rows: Sequence[DeploymentRow],
    changes: Iterable[Change],
    lifecycle: Lifecycle,
    now: datetime,
) -> None:
    """Apply a pass's changes with a few set-based UPDATEs, one per kind of change.

    `rows` are every queued and room-holding row of the cluster, locked (the cluster's
    lock held first); they are updated in memory too, and `allocated` is recomputed from
    them, which also repairs counters that drifted. ``bulk_update`` would build a CASE
    over every changed row, which PostgreSQL evaluates per row: quadratic, minutes for a
    first pass over 10,000 waiting.
    """
    by_id = {row.id: row for row in rows}
    groups: dict[tuple[SchedulerAction, Step], tuple[dict, list[int]]] = {}
    events: list[DeploymentEvent] = []
    for change in changes:
        row = by_id[change.deployment_id]
        moved = step(change.action, row.status, lifecycle=lifecycle)
        values = _row_values(change.action, moved, now=now)
        if "preemption_count" in values:
            row.preemption_count += 1
            values["preemption_count"] = F("preemption_count") + 1
        if change.action == SchedulerAction.START:
            values["status_reason"] = ""  # placed: no longer waiting for anything
        row.status = moved.status
        row.started_at = values.get("started_at", row.started_at)
        row.status_reason = values.get("status_reason", row.status_reason)
        groups.setdefault((change.action, moved), (values, []))[1].append(row.id)
        events.append(
            _event(row.id, moved.source, moved.status, change.reason, now, None, change.related_id)
        )
    for values, ids in groups.values():
        update_rows(ids, **values, updated_at=now)
    DeploymentEvent.objects.bulk_create(events)
    _store_allocated(cluster, Resources.total(r.resources for r in rows if r.status in HOLDS_ROOM))


_UPDATE_BATCH = 10_000  # ids per UPDATE: PostgreSQL takes at most 65,535 parameters


def update_rows(ids: list[int], **values) -> None:
    """Set ``values`` on the deployments ``ids``, one UPDATE per batch."""
    for begin in range(0, len(ids), _UPDATE_BATCH):
        Deployment.objects.filter(pk__in=ids[begin : begin + _UPDATE_BATCH]).update(**values)


# --- the one place for each write ------------------------------------------------------


def _row_values(action: AnyAction, moved: Step, *, now: datetime) -> dict:
    """The fields a step sets besides the reason (`preemption_count` None: add one)."""
    values: dict = {"status": moved.status, "stopping_to": moved.stopping_to}
    if moved.status in FINISHED:
        values["finished_at"] = now
    if action == DependencyAction.RELEASE:
        values["queued_at"] = now  # a preempted deployment keeps its place: not reset
    if moved.source == Status.QUEUED and moved.status in HOLDS_ROOM:
        values["started_at"] = now
    if moved.status == Status.QUEUED and moved.source != Status.PENDING:
        values["started_at"] = None
    if action == SchedulerAction.PREEMPT:
        values["preemption_count"] = None
    return values


def _shifted(allocated: Resources, request: Resources, sign: int) -> Resources:
    return allocated + request if sign > 0 else allocated - request


def _store_allocated(cluster: Cluster, allocated: Resources) -> None:
    """The only writer of `allocated`; the CHECK constraints refuse any overflow."""
    if allocated != cluster.allocated:
        cluster.set_allocated(allocated)
        cluster.save(update_fields=ALLOCATED_FIELDS)


def _event(
    deployment_id: int,
    from_status: str,
    to_status: str,
    reason: str,
    at: datetime,
    actor_id: int | None,
    related_id: int | None,
) -> DeploymentEvent:
    """The only place an event is built."""
    return DeploymentEvent(
        deployment_id=deployment_id,
        at=at,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        actor_id=actor_id,
        related_deployment_id=related_id,
    )
