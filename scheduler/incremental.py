"""Scheduling decisions that need no pass, because their outcome is certain.

A full pass reads every queued and running deployment of its cluster: its cost grows
with the queue. Most events on a long queue change nothing but the event itself, and
that can be proved from a few index lookups under the cluster's lock:

**Nothing could start.** If no queued deployment fits in the free room plus the room of
every preemptible deployment that holds room, no plan can start anything: whatever either policy
chooses must keep the non-preemptible running work, so a queued deployment that does
not fit beside it is in no feasible outcome; and a plan stops work only to start work.
So the full planner's plan is empty. The test is one `EXISTS` over the queued rows whose
CPU is at most the room's (index `deployment_queued_size`): bounded by the deployments
that could use the room, not by the queue.

**An arrival that fits.** A deployment just queued that fits in the free room starts, and
nothing else does, when: nothing else could start (above, with the room measured before
it starts: its start only takes room, and a deployment that could later preempt it
needs more than that room anyway); and no queued deployment of its priority or higher
holds a starvation reservation (which could hold the room it fits in). Then fifo starts
it where the walk reaches it (it fits; no one else can move), and pack's best outcome is
the running set plus it (adding it raises its level's count and stops nothing; nothing
else can be added). An arrival that could not start even by preemption, on a cluster
where nothing else could either, needs no pass at all. `scheduler/tests/test_incremental.py` compares both shortcuts with
the full planner over random event streams on PostgreSQL.

They apply to changes of deployments (creates, completions, failures, cancellations) on
manual clusters; a cluster change (capacity, policy) still runs a pass, which rewrites the
reasons, and so does any change on a cluster with a runtime (its pass also hands the
runtime its starts and stops).
What these shortcuts do not do is rewrite the queue's reasons: a pass explains every
waiting deployment (with the free room it saw), and skipping the pass leaves those
sentences as the last full pass wrote them, until the next one (any event the shortcuts
cannot decide, a capacity change, the safety net).
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from clusters.locking import lock_cluster
from clusters.models import Cluster
from deployments.locking import ROW_FIELDS, DeploymentRow
from deployments.models import HOLDS_ROOM, Deployment, Status
from deployments.statemachine import Change, SchedulerAction, lifecycle_of, transition_bulk
from hypervisor.contention import retry_on_contention
from hypervisor.resources import Resources
from planner import reasons
from scheduler.services import FITS_REASON, PassResult, pass_finished


def nothing_could_start(cluster: Cluster, *, excluding: int | None = None) -> bool:
    """Whether no queued deployment of the cluster (but `excluding`) could start, even by
    preempting every preemptible one that holds room. The caller holds the cluster's
    lock."""
    room = cluster.capacity - cluster.allocated + _preemptible_room(cluster.pk)
    fitting = Deployment.objects.filter(
        cluster_id=cluster.pk,
        status=Status.QUEUED,
        cpu__lte=room.cpu,
        ram_mb__lte=room.ram_mb,
        gpu__lte=room.gpu,
    )
    if excluding is not None:
        fitting = fitting.exclude(pk=excluding)
    return not fitting.exists()


def decide_without_pass(*, cluster_id: int, arrival: int | None = None) -> bool:
    """Decide a change to the cluster's deployments without a pass where the outcome is
    certain: True when nothing is left to decide, False when a pass must run.

    With `arrival` (a deployment just queued), it starts at once if the full planner
    would start it and nothing else, or is explained and left waiting if nothing at all
    could start."""
    return retry_on_contention(lambda: _decide_once(cluster_id=cluster_id, arrival=arrival))


def _decide_once(*, cluster_id: int, arrival: int | None) -> bool:
    began = time.monotonic()
    with transaction.atomic(durable=True):
        cluster = lock_cluster(cluster_id)  # lock order step 1
        if cluster is None:
            return True
        if cluster.runtime_id is not None:
            # A pass also hands the runtime its starts and stops (scheduler.runtimework):
            # on such a cluster, always pass.
            return False
        if nothing_could_start(cluster):
            return arrival is None or _leave_waiting(cluster, arrival)
        if arrival is None:
            return False
        rows = _lock_rows(cluster.pk, arrival)  # step 2
        row = next((r for r in rows if r.id == arrival), None)
        if row is None or row.status != Status.QUEUED or not _starts_alone(cluster, row):
            return False
        now = timezone.now()
        change = Change(arrival, SchedulerAction.START, FITS_REASON)
        transition_bulk(
            cluster=cluster, rows=rows, changes=[change], lifecycle=lifecycle_of(cluster), now=now
        )
    result = PassResult(
        cluster_id=cluster_id,
        started=[arrival],
        waits=[(row.priority, (now - row.queued_at).total_seconds())],
    )
    pass_finished.send(sender=PassResult, result=result, seconds=time.monotonic() - began)
    return True


def _lock_rows(cluster_id: int, arrival: int) -> list[DeploymentRow]:
    """The arrival and every deployment holding room (few: they fit in the cluster), in
    pk order: what the state machine's bulk form needs to recompute `allocated`."""
    rows = (
        Deployment.objects.select_for_update(no_key=True)
        .filter(Q(pk=arrival) | Q(cluster_id=cluster_id, status__in=HOLDS_ROOM))
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


def _preemptible_room(cluster_id: int, *, below: int | None = None) -> Resources:
    """What the cluster's preemptible deployments that hold room (of priority under
    `below`) hold: few rows, they fit in the cluster. Counting those already stopping
    overstates the room, which only makes the shortcuts rarer."""
    holding = Deployment.objects.filter(
        cluster_id=cluster_id, status__in=HOLDS_ROOM, preemptible=True
    )
    if below is not None:
        holding = holding.filter(priority__lt=below)
    held = holding.aggregate(cpu=Sum("cpu"), ram_mb=Sum("ram_mb"), gpu=Sum("gpu"))
    return Resources(held["cpu"] or 0, held["ram_mb"] or 0, held["gpu"] or 0)
