"""Property tests: every plan, on random clusters, keeps the scheduler's guarantees.

The checker below is written from API.md, independently of the planner's code: it
recomputes the state a plan leads to, the order of consideration and the starvation
reservations, and checks guarantees 1 and 3 to 6, the plan's netness, idempotence and
determinism.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.allocation import (
    ClusterSnapshot,
    Plan,
    Policy,
    Resources,
    RunningDeployment,
    WaitingDeployment,
    plan,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
PROPERTY_SETTINGS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

Vec = tuple[int, int, int]


# -- strategies -----------------------------------------------------------------------

EIGHTHS = st.sampled_from([0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 8])
SMALL_EIGHTHS = st.sampled_from([0, 1, 1, 1, 2, 2, 3])  # running work: many small pieces


@st.composite
def capacities(draw: st.DrawFn) -> Resources:
    return Resources(
        cpu=draw(st.sampled_from([0, 500, 2000, 4000, 8000, 16000])),
        ram_mb=draw(st.sampled_from([0, 1024, 8192, 65536])),
        gpu=draw(st.sampled_from([0, 0, 1, 2, 4, 8])),  # zero-GPU clusters are common
    )


@st.composite
def requests(
    draw: st.DrawFn, capacity: Resources, eighths: st.SearchStrategy[int] = EIGHTHS
) -> Resources:
    """Skewed shapes: each dimension a multiple of 1/8 of the capacity, often 0, and
    now and then a request beyond the capacity (it must wait for ever, quietly)."""
    cpu, ram, gpu = (draw(eighths) * c // 8 for c in (capacity.cpu, capacity.ram_mb, capacity.gpu))
    if draw(st.integers(0, 24)) == 0:
        cpu += capacity.cpu + 250
    if draw(st.integers(0, 24)) == 0:
        gpu += 1
    return Resources(cpu, ram, gpu)


def ago(draw: st.DrawFn) -> datetime:
    return NOW - timedelta(seconds=100 * draw(st.integers(0, 12)))


@st.composite
def snapshots(
    draw: st.DrawFn, policy: st.SearchStrategy[Policy], max_running: int = 8, max_waiting: int = 10
) -> ClusterSnapshot:
    capacity = draw(capacities())
    n_running = draw(st.integers(0, max_running))
    n_waiting = draw(st.integers(0, max_waiting))
    ids = draw(st.permutations(range(1, n_running + n_waiting + 1)))
    running: list[RunningDeployment] = []
    room = capacity
    for id_ in ids[:n_running]:
        resources = draw(requests(capacity, SMALL_EIGHTHS))
        if not resources.fits_in(room):  # the database never holds an over-full cluster
            continue
        room = room - resources
        started = ago(draw)
        running.append(
            RunningDeployment(
                id=id_,
                resources=resources,
                priority=draw(st.integers(0, 3)),
                preemptible=draw(st.integers(0, 4)) > 0,
                started_at=started,
                queued_at=started - timedelta(seconds=100 * draw(st.integers(0, 3))),
            )
        )
    waiting = [
        WaitingDeployment(
            id=id_,
            resources=draw(requests(capacity)),
            priority=draw(st.integers(0, 3)),
            preemptible=draw(st.booleans()),
            queued_at=ago(draw),
        )
        for id_ in ids[n_running:]
    ]
    return ClusterSnapshot(
        capacity=capacity,
        running=tuple(running),
        waiting=tuple(waiting),
        now=NOW,
        policy=draw(policy),
        starvation_after_seconds=draw(st.sampled_from([None, None, 0, 350, 750])),
    )


# -- the checker ----------------------------------------------------------------------


def vec(r: Resources) -> Vec:
    return (r.cpu, r.ram_mb, r.gpu)


def fits(a: Vec, b: Vec) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True))


def add(a: Vec, b: Vec) -> Vec:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def total(items) -> Vec:
    out = (0, 0, 0)
    for item in items:
        out = add(out, vec(item.resources))
    return out


def reserve(held: Vec, need: Vec, free: Vec) -> Vec:
    """A starving deployment that cannot start holds what is free (and not yet held)
    of its request; reservations stack."""
    return (
        held[0] + min(need[0], max(0, free[0] - held[0])),
        held[1] + min(need[1], max(0, free[1] - held[1])),
        held[2] + min(need[2], max(0, free[2] - held[2])),
    )


def starving(snapshot: ClusterSnapshot, queued_at: datetime) -> bool:
    limit = snapshot.starvation_after_seconds
    return limit is not None and (snapshot.now - queued_at).total_seconds() > limit


def order_key(snapshot: ClusterSnapshot, w: WaitingDeployment) -> tuple:
    return (-w.priority, not starving(snapshot, w.queued_at), w.queued_at, w.id)


def as_waiting(r: RunningDeployment) -> WaitingDeployment:
    """A victim back in the queue: its original queued_at, hence its original place."""
    assert r.queued_at is not None
    return WaitingDeployment(r.id, r.resources, r.priority, r.preemptible, r.queued_at)


def as_running(w: WaitingDeployment, now: datetime) -> RunningDeployment:
    return RunningDeployment(w.id, w.resources, w.priority, w.preemptible, now, w.queued_at)


@dataclass
class Outcome:
    """The state a plan leads to, and the reservations seen walking its queue."""

    running: dict[int, RunningDeployment]
    waiting: dict[int, WaitingDeployment]
    free: Vec
    held_after: list[tuple[int, Vec]]  # (priority, reservations held after that entry)
    held_before: dict[int, Vec]  # waiting id -> reservations that apply to it

    def held_for(self, priority: int) -> Vec:
        """Room reserved by starving deployments of priority >= ``priority``."""
        held = (0, 0, 0)
        for p, h in self.held_after:
            if p >= priority:
                held = h
        return held

    def lower_room(self, priority: int) -> Vec:
        return total(r for r in self.running.values() if r.preemptible and r.priority < priority)

    def next_snapshot(self, snapshot: ClusterSnapshot) -> ClusterSnapshot:
        return replace(
            snapshot, running=tuple(self.running.values()), waiting=tuple(self.waiting.values())
        )


def check_consistency(snapshot: ClusterSnapshot, result: Plan) -> Outcome:
    """The plan is net and self-consistent; returns the state it leads to."""
    running = {r.id: r for r in snapshot.running}
    waiting = {w.id: w for w in snapshot.waiting}
    started = [s.deployment_id for s in result.starts]
    victims = [p.victim_id for p in result.preemptions]
    assert len(set(started)) == len(started) and set(started) <= waiting.keys()
    assert len(set(victims)) == len(victims) and set(victims) <= running.keys()
    assert [(p.victim_id, p.preemptor_id) for p in result.preemptions] == [
        (v, s.deployment_id) for s in result.starts for v in s.preempted
    ]
    new_running = {i: r for i, r in running.items() if i not in victims}
    new_running |= {i: as_running(waiting[i], snapshot.now) for i in started}
    new_waiting = {i: w for i, w in waiting.items() if i not in started}
    new_waiting |= {i: as_waiting(running[i]) for i in victims}
    assert [e.position for e in result.queue] == list(range(1, len(new_waiting) + 1))
    # Guarantee 6 and "victims keep their place": the queue is in order of consideration.
    expected = sorted(new_waiting.values(), key=lambda w: order_key(snapshot, w))
    assert [e.deployment_id for e in result.queue] == [w.id for w in expected]
    free = sub(vec(snapshot.capacity), total(new_running.values()))
    return Outcome(new_running, new_waiting, free, [], {})


def check_guarantees(snapshot: ClusterSnapshot, result: Plan) -> Outcome:
    outcome = check_consistency(snapshot, result)
    capacity, free = vec(snapshot.capacity), outcome.free
    assert fits((0, 0, 0), free), "guarantee 1: capacity exceeded"
    held = (0, 0, 0)
    for entry in result.queue:
        w = outcome.waiting[entry.deployment_id]
        need, usable = vec(w.resources), sub(free, held)
        outcome.held_before[w.id] = held
        assert not fits(need, usable), f"guarantee 4: {w.id} fits in {usable}"
        lower = outcome.lower_room(w.priority)
        assert not fits(need, add(usable, lower)), f"guarantee 3: {w.id} could preempt"
        reserves = starving(snapshot, w.queued_at) and fits(need, capacity)
        assert entry.reserved == reserves
        assert entry.reason
        if reserves:
            held = reserve(held, need, free)
        outcome.held_after.append((w.priority, held))
    check_preemptions(snapshot, result, outcome)
    return outcome


def victim_order_key(r: RunningDeployment) -> tuple:
    """Guarantee 5: lowest priority first, then the most recently started first."""
    return (r.priority, -r.started_at.timestamp(), -r.id)


def check_preemptions(snapshot: ClusterSnapshot, result: Plan, outcome: Outcome) -> None:
    running = {r.id: r for r in snapshot.running}
    waiting = {w.id: w for w in snapshot.waiting}
    reservations = any(e.reserved for e in result.queue)
    for start in result.starts:
        preemptor = waiting[start.deployment_id]
        for victim_id in start.preempted:
            victim = running[victim_id]
            # Room the swap may use: neither what is reserved against the preemptor nor
            # what is reserved against the victim coming back.
            held = tuple(
                map(max, outcome.held_for(preemptor.priority), outcome.held_before[victim_id])
            )
            room = sub(outcome.free, held)
            assert victim.preemptible and victim.priority < preemptor.priority
            if not reservations:  # minimality: no victim would fit back
                assert not fits(vec(victim.resources), outcome.free)
            # Minimality in net form: it was stopped for higher-priority work, not for
            # what comes after it in the queue. Undo the starts considered after it: it
            # still must not fit in the room it may use.
            later = [
                waiting[s.deployment_id]
                for s in result.starts
                if order_key(snapshot, waiting[s.deployment_id])
                > order_key(snapshot, outcome.waiting[victim_id])
            ]
            back = sub(add(outcome.free, total(later)), outcome.held_before[victim_id])
            assert not fits(vec(victim.resources), back), f"{victim_id} was not needed"
            # Lowest priority first, most recent first, in net form: no deployment that
            # was running before the plan, and still runs, and comes earlier in the
            # preference order could have gone in its stead. (Those started by the plan
            # were not running when the victim was chosen; guarantees 3 and 4 cover them.)
            for other in outcome.running.values():
                if (
                    other.id in running
                    and other.preemptible
                    and other.priority < preemptor.priority
                    and victim_order_key(other) < victim_order_key(victim)
                ):
                    swapped = add(room, sub(vec(other.resources), vec(victim.resources)))
                    assert not fits((0, 0, 0), swapped), (
                        f"{other.id} should have been preempted instead of {victim_id}"
                    )


def check_single_preemption_prefix(snapshot: ClusterSnapshot, result: Plan) -> None:
    """Guarantee 5 literally, when the plan is one start: its victims lie within the
    shortest prefix, in preference order, of the lower-priority preemptible deployments
    that makes room for it in the room it could use (free minus reservations held by
    starving deployments considered before it)."""
    if len(result.starts) != 1 or not result.starts[0].preempted:
        return
    start = result.starts[0]
    preemptor = next(w for w in snapshot.waiting if w.id == start.deployment_id)
    capacity = vec(snapshot.capacity)
    free = sub(capacity, total(snapshot.running))
    held = (0, 0, 0)
    for w in sorted(snapshot.waiting, key=lambda w: order_key(snapshot, w)):
        if w.id == preemptor.id:
            break
        need = vec(w.resources)
        if starving(snapshot, w.queued_at) and fits(need, capacity):
            held = reserve(held, need, free)
    candidates = sorted(
        (r for r in snapshot.running if r.preemptible and r.priority < preemptor.priority),
        key=victim_order_key,
    )
    room, prefix = sub(free, held), set()
    for candidate in candidates:
        if fits(vec(preemptor.resources), room):
            break
        prefix.add(candidate.id)
        room = add(room, vec(candidate.resources))
    assert set(start.preempted) <= prefix


def shuffled(snapshot: ClusterSnapshot, seed: int) -> ClusterSnapshot:
    rng = random.Random(seed)
    running, waiting = list(snapshot.running), list(snapshot.waiting)
    rng.shuffle(running)
    rng.shuffle(waiting)
    return replace(snapshot, running=tuple(running), waiting=tuple(waiting))


@st.composite
def crowded_snapshots(draw: st.DrawFn) -> ClusterSnapshot:
    """A full cluster of small preemptible pieces at several priorities, and one or two
    high-priority arrivals: where the choice of victims matters."""
    snapshot = draw(snapshots(st.just(Policy.FIFO), max_running=12, max_waiting=0))
    capacity = snapshot.capacity
    arrivals = tuple(
        WaitingDeployment(
            id=100 + i,
            resources=draw(requests(capacity)),
            priority=draw(st.integers(3, 5)),
            preemptible=True,
            queued_at=ago(draw),
        )
        for i in range(draw(st.integers(1, 2)))
    )
    return replace(snapshot, waiting=arrivals)


# -- the properties -------------------------------------------------------------------

ANY_POLICY = st.sampled_from([Policy.FIFO])


@PROPERTY_SETTINGS
@given(snapshot=snapshots(ANY_POLICY), seed=st.integers(0, 2**16))
def test_every_plan_keeps_the_guarantees(snapshot: ClusterSnapshot, seed: int) -> None:
    result = plan(snapshot)
    outcome = check_guarantees(snapshot, result)
    if snapshot.policy is Policy.FIFO:
        check_single_preemption_prefix(snapshot, result)
    # Idempotence: planning the resulting state again changes nothing.
    again = plan(outcome.next_snapshot(snapshot))
    assert not again.changed
    assert again.queue == result.queue
    # Determinism, whatever the order of the input.
    assert plan(shuffled(snapshot, seed)) == result


@PROPERTY_SETTINGS
@given(snapshot=snapshots(ANY_POLICY, max_running=14, max_waiting=14))
def test_busier_clusters_keep_the_guarantees(snapshot: ClusterSnapshot) -> None:
    check_guarantees(snapshot, plan(snapshot))


def reference_walk(snapshot: ClusterSnapshot) -> tuple[list[int], list[tuple[int, bool]]]:
    """API.md's fifo with starvation reservations, for a cluster where nothing can be
    preempted: one walk in order of consideration; what fits in the room not reserved
    starts; a starving deployment that does not fit holds what is free of its request.
    Returns the started ids (in order) and the queue as (id, reserved)."""
    capacity = vec(snapshot.capacity)
    free, held = sub(capacity, total(snapshot.running)), (0, 0, 0)
    starts, queue = [], []
    for w in sorted(snapshot.waiting, key=lambda w: order_key(snapshot, w)):
        need = vec(w.resources)
        if fits(need, sub(free, held)):
            starts.append(w.id)
            free = sub(free, need)
            continue
        reserves = starving(snapshot, w.queued_at) and fits(need, capacity)
        queue.append((w.id, reserves))
        if reserves:
            held = reserve(held, need, free)
    return starts, queue


@PROPERTY_SETTINGS
@given(snapshot=snapshots(st.just(Policy.FIFO), max_waiting=14))
def test_without_preemption_fifo_is_the_reference_walk(snapshot: ClusterSnapshot) -> None:
    snapshot = replace(
        snapshot, running=tuple(replace(r, preemptible=False) for r in snapshot.running)
    )
    result = plan(snapshot)
    starts, queue = reference_walk(snapshot)
    assert [s.deployment_id for s in result.starts] == starts
    assert [(e.deployment_id, e.reserved) for e in result.queue] == queue


@PROPERTY_SETTINGS
@given(snapshot=crowded_snapshots())
def test_victims_are_chosen_in_preference_order(snapshot: ClusterSnapshot) -> None:
    result = plan(snapshot)
    check_guarantees(snapshot, result)
    check_single_preemption_prefix(snapshot, result)
