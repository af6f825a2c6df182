"""Scheduling decisions that need no pass over the whole queue, because their outcome is
certain from a few index lookups under the cluster's lock.

A full pass reads every queued and running deployment of its cluster: its cost grows
with the queue. Most events on a long queue concern only the few deployments that could
use the room they free or take. Call the cluster's *reach* its capacity minus the room
held by non-preemptible work (the free room plus what every preemptible deployment that
holds room holds): no plan stops non-preemptible work, so a queued deployment whose
request does not fit in the reach is *out of reach*: it starts in no plan.

**Nothing could start.** If no queued deployment is in reach, no plan starts anything,
and a plan stops work only to start work: the full planner's plan is empty. The test is
one `EXISTS` over the queued rows whose request fits the reach (index
`deployment_queued_size`): it reads the deployments that could use the room, not the
queue.

**An arrival that fits.** A deployment just queued that fits in the free room starts, and
nothing else does, when: nothing else could start (above, with the room measured before
it starts: its start only takes room, and a deployment that could later preempt it
needs more than that room anyway); and no queued deployment of its priority or higher
holds a starvation reservation (which could hold the room it fits in). Then fifo starts
it where the walk reaches it (it fits; no one else can move), and pack's best outcome is
the running set plus it (adding it raises its level's count and stops nothing; nothing
else can be added). An arrival that could not start even by preemption, on a cluster
where nothing else could either, needs no pass at all.

**A plan over the deployments that could use the room** (a completion, failure or
cancellation after which something could start; an arrival that must share the room or
preempt keeps its pass, merged with the others of its window when there is Redis). The
planner runs over the running set plus the queued deployments in reach and those that
hold a starvation reservation (waited past the cluster's limit), read by index
(`deployment_queued_size` for the first, `deployment_queued_age` for the second), at
most `BOUNDED_LIMIT` of them together (beyond, a pass). Its plan is the full planner's,
because a queued deployment out of reach that holds no reservation changes no decision
of either policy:
- fifo walks the queue in order of consideration and only starts (if it fits in the free
  room less the held room, backfilling past those that do not), preempts (for one that
  fits with lower-priority preemptible work stopped) and reserves (a starving one that
  does not start). Nothing blocks the head of the line but reservations. An out-of-reach
  deployment never starts (at any step of the walk, the free room plus the victims it
  may take is at most the reach), and if it holds no reservation, not starting changes
  nothing the walk carries (free room, held room, the lower-priority preemptible room,
  the victims coming back): the walk without it takes every other step the same;
- pack (`planner/policies/pack.py`) leaves out-of-reach deployments that hold no
  reservation out of its search problem and out of its "anything left to choose?"
  test, so the problem, hence the search's answer (exact or heuristic, within its node
  budget or not), is the same with or without them; its realizing walk and its fifo
  repair are walks as above, and its comparison with fifo compares the same two plans.
Reservations are honoured because every starving deployment is read, whatever its size;
a starving running deployment is in the running set anyway. The reasons the plan gives
the deployments it read are the full planner's too (a reason depends on the free, the
held and the lower-priority room, which a deployment out of reach without a reservation
does not change); the plan is applied as a pass applies it (`apply_plan`).

These apply to changes of deployments (creates, completions, failures, cancellations) on
manual clusters; a cluster change (capacity, policy) still runs a pass, which rewrites the
reasons, and so does any change on a cluster with a runtime (its pass also hands the
runtime its starts and stops). `scheduler/tests/test_incremental.py` compares all three
with the full planner over random event streams on PostgreSQL.

What they leave stale is the reason of the waiting deployments they did not read: a pass
explains every waiting deployment with the free room it saw. So every decision that may
have changed the room or the reservations returns `Decision.DECIDED`, on which
`scheduler.triggers` asks for a coalesced refresh (a pass at most once per cluster per
`SCHEDULER_REASONS_SECONDS`, docs/scheduling.md).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from enum import Enum

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

import planner
from clusters.locking import lock_cluster
from clusters.models import Cluster
from deployments.locking import ROW_FIELDS, DeploymentRow
from deployments.models import HOLDS_ROOM, Deployment, Status
from deployments.statemachine import Change, SchedulerAction, lifecycle_of, transition_bulk
from hypervisor.contention import retry_on_contention
from hypervisor.resources import Resources
from planner import reasons
from scheduler.services import FITS_REASON, PassResult, apply_plan, pass_finished, snapshot_of

# Most queued deployments a plan without a pass reads; beyond, the pass reads them all.
BOUNDED_LIMIT = 200


class Decision(Enum):
    """What `decide_without_pass` did."""

    NEEDS_PASS = "a pass must decide"
    DECIDED = "decided; the reasons of the deployments not read may be stale"
    UNCHANGED = "nothing changed that another deployment's reason depends on"


def nothing_could_start(cluster: Cluster, *, excluding: int | None = None) -> bool:
    """Whether no queued deployment of the cluster (but `excluding`) could start, even by
    preempting every preemptible one that holds room. The caller holds the cluster's
    lock."""
    fitting = _in_reach(cluster)
    if excluding is not None:
        fitting = fitting.exclude(pk=excluding)
    return not fitting.exists()


def decide_without_pass(
    *, cluster_id: int, arrival: int | None = None, cause: str = ""
) -> Decision:
    """Decide a change to the cluster's deployments without a pass over the whole queue
    where the outcome is certain (the module's three cases).

    With `arrival` (a deployment just queued), it starts at once if the full planner
    would start it and nothing else, or is explained and left waiting if nothing at all
    could start. `cause` is named in the events of deployments that start, as a pass
    names it."""
    return retry_on_contention(
        lambda: _decide_once(cluster_id=cluster_id, arrival=arrival, cause=cause)
    )


def _decide_once(*, cluster_id: int, arrival: int | None, cause: str) -> Decision:
    began = time.monotonic()
    with transaction.atomic(durable=True):
        cluster = lock_cluster(cluster_id)  # lock order step 1
        if cluster is None:
            return Decision.UNCHANGED
        if cluster.runtime_id is not None:
            # A pass also hands the runtime its starts and stops (scheduler.runtimework):
            # on such a cluster, always pass.
            return Decision.NEEDS_PASS
        if nothing_could_start(cluster):
            if arrival is None:
                return Decision.DECIDED
            return Decision.UNCHANGED if _leave_waiting(cluster, arrival) else Decision.NEEDS_PASS
        if arrival is not None:
            # One that must share the room or preempt gets a pass: with Redis, a burst
            # of such creates merges into one pass per window, in a worker.
            result = _start_alone(cluster, arrival)
        else:
            result = _plan_bounded(cluster, cause=cause)
        if result is None:
            return Decision.NEEDS_PASS
    pass_finished.send(sender=PassResult, result=result, seconds=time.monotonic() - began)
    return Decision.DECIDED


def _start_alone(cluster: Cluster, arrival: int) -> PassResult | None:
    """Start the arrival alone if the full planner would (the module's second case)."""
    rows = _lock_rows(cluster.pk, [arrival])  # step 2
    row = next((r for r in rows if r.id == arrival), None)
    if row is None or row.status != Status.QUEUED or not _starts_alone(cluster, row):
        return None
    now = timezone.now()
    change = Change(arrival, SchedulerAction.START, FITS_REASON)
    transition_bulk(
        cluster=cluster, rows=rows, changes=[change], lifecycle=lifecycle_of(cluster), now=now
    )
    return PassResult(
        cluster_id=cluster.pk,
        started=[arrival],
        waits=[(row.priority, (now - row.queued_at).total_seconds())],
        path="arrival",
    )


def _plan_bounded(cluster: Cluster, *, cause: str) -> PassResult | None:
    """Plan over the running set and the queued deployments in reach or starving (the
    module's third case); None if they are more than `BOUNDED_LIMIT`."""
    now = timezone.now()  # the planner's too: who starves is decided at this instant
    ids = _candidates(cluster, now=now)
    if ids is None:
        return None
    rows = _lock_rows(cluster.pk, ids)  # step 2
    plan = planner.plan(snapshot_of(cluster, rows, now=now))
    apply_plan(cluster, rows, plan, now=now, cause=cause)
    by_id = {row.id: row for row in rows}
    started = [by_id[start.deployment_id] for start in plan.starts]
    return PassResult(
        cluster_id=cluster.pk,
        started=[row.id for row in started],
        preempted=[(p.victim_id, p.preemptor_id) for p in plan.preemptions],
        waits=[(row.priority, (now - row.queued_at).total_seconds()) for row in started],
        path="bounded",
    )


def _candidates(cluster: Cluster, *, now: datetime) -> list[int] | None:
    """The queued deployments in reach and those starving at `now`, or None if they are
    more than `BOUNDED_LIMIT`. Each query stops after `BOUNDED_LIMIT + 1` rows."""
    limit = BOUNDED_LIMIT + 1
    # Ordered as the indexes are, so that each query is a range scan that stops at the
    # limit (the model's default order, by id, would sort every match first).
    fitting = _in_reach(cluster).order_by("cpu", "ram_mb", "gpu")
    ids = set(fitting.values_list("pk", flat=True)[:limit])
    seconds = cluster.starvation_after_seconds
    if seconds is not None and len(ids) <= BOUNDED_LIMIT:
        starving = Deployment.objects.filter(
            cluster_id=cluster.pk,
            status=Status.QUEUED,
            # The planner's test (planner.is_starving), at the same instant.
            queued_at__lt=now - timedelta(seconds=seconds),
        )
        ids.update(starving.order_by("queued_at").values_list("pk", flat=True)[:limit])
    return sorted(ids) if len(ids) <= BOUNDED_LIMIT else None


def _in_reach(cluster: Cluster):
    """The cluster's queued deployments whose request fits in its reach (index
    `deployment_queued_size`). The caller holds the cluster's lock."""
    reach = cluster.capacity - _non_preemptible_room(cluster.pk)
    return Deployment.objects.filter(
        cluster_id=cluster.pk,
        status=Status.QUEUED,
        cpu__lte=reach.cpu,
        ram_mb__lte=reach.ram_mb,
        gpu__lte=reach.gpu,
    )


def _lock_rows(cluster_id: int, queued: list[int]) -> list[DeploymentRow]:
    """The `queued` deployments still queued and every deployment holding room (few:
    they fit in the cluster), in pk order: what the planner needs besides, and what the
    state machine's bulk form needs to recompute `allocated`."""
    rows = (
        Deployment.objects.select_for_update(no_key=True)
        .filter(
            Q(pk__in=queued, status=Status.QUEUED) | Q(cluster_id=cluster_id, status__in=HOLDS_ROOM)
        )
        .order_by("pk")
        .values_list(*ROW_FIELDS)
    )
    return [DeploymentRow.from_values(values) for values in rows]


def _starts_alone(cluster: Cluster, row: DeploymentRow) -> bool:
    if not row.resources.fits_in(cluster.capacity - cluster.allocated):
        return False
    if _reservation_at_or_above(cluster, row.priority, excluding=row.id):
        return False
    return nothing_could_start(cluster, excluding=row.id)


def _leave_waiting(cluster: Cluster, arrival: int) -> bool:
    """Nothing could start, the arrival included: if no reservation at its priority or
    above shapes its wait, explain it as a pass would (the free room, and what
    preempting lower-priority work could add); else let a pass explain it."""
    deployment = Deployment.objects.filter(pk=arrival, status=Status.QUEUED).first()
    if deployment is None:
        return True  # a pass or a person acted on it first
    if _reservation_at_or_above(cluster, deployment.priority):
        return False
    free = cluster.capacity - cluster.allocated
    lower = _preemptible_room(cluster.pk, below=deployment.priority)
    reason = reasons.shortage(
        request=tuple(deployment.resources),
        usable=tuple(free),
        held=tuple(0 for _ in free),
        lower=tuple(lower),
        capacity=tuple(cluster.capacity),
    )
    Deployment.objects.filter(pk=arrival).update(status_reason=reason)
    return True


def _reservation_at_or_above(
    cluster: Cluster, priority: int, *, excluding: int | None = None
) -> bool:
    """Whether a queued deployment of at least `priority` has waited past the cluster's
    starvation limit (it may hold room that a deployment of `priority` may not take)."""
    limit = cluster.starvation_after_seconds
    if limit is None:
        return False
    starving = Deployment.objects.filter(
        cluster_id=cluster.pk,
        status=Status.QUEUED,
        priority__gte=priority,
        # At the limit or past it: `now` moves on before a pass would look.
        queued_at__lte=timezone.now() - timedelta(seconds=limit),
    )
    return starving.exclude(pk=excluding).exists() if excluding else starving.exists()


def _preemptible_room(cluster_id: int, *, below: int) -> Resources:
    """What the cluster's preemptible deployments of priority under `below` that hold room
    hold: few rows, they fit in the cluster."""
    return _held(
        Deployment.objects.filter(
            cluster_id=cluster_id, status__in=HOLDS_ROOM, preemptible=True, priority__lt=below
        )
    )


def _non_preemptible_room(cluster_id: int) -> Resources:
    """What the cluster's non-preemptible deployments that hold room hold. Those stopping
    count as gone (a pass leaves their room out of the capacity): that overstates the
    reach, which only makes the reads larger."""
    return _held(
        Deployment.objects.filter(
            cluster_id=cluster_id,
            status__in=[Status.STARTING, Status.RUNNING],
            preemptible=False,
        )
    )


def _held(holding) -> Resources:
    held = holding.aggregate(cpu=Sum("cpu"), ram_mb=Sum("ram_mb"), gpu=Sum("gpu"))
    return Resources(held["cpu"] or 0, held["ram_mb"] or 0, held["gpu"] or 0)
