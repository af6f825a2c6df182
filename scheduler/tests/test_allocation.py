"""Worked examples for the pure planner (no database: plain dataclasses in, a plan out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hypervisor.resources import Resources
from planner import (
    ClusterSnapshot,
    Plan,
    Policy,
    Preemption,
    RunningDeployment,
    Start,
    WaitingDeployment,
    plan,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)

POLICIES = [Policy.FIFO, Policy.PACK]


def cpu(cores: float, ram_mb: int = 0, gpu: int = 0) -> Resources:
    return Resources(round(cores * 1000), ram_mb, gpu)


def running(
    id: int,
    resources: Resources,
    priority: int = 0,
    *,
    preemptible: bool = True,
    started: int = 0,
    queued: int | None = None,
) -> RunningDeployment:
    """A running deployment started ``started`` seconds after T0."""
    return RunningDeployment(
        id=id,
        resources=resources,
        priority=priority,
        preemptible=preemptible,
        started_at=T0 + timedelta(seconds=started),
        queued_at=T0 + timedelta(seconds=started if queued is None else queued),
    )


def waiting(id: int, resources: Resources, priority: int = 0, *, queued: int = 0):
    return WaitingDeployment(
        id=id,
        resources=resources,
        priority=priority,
        preemptible=True,
        queued_at=T0 + timedelta(seconds=queued),
    )


def snapshot(
    capacity: Resources,
    running_: tuple = (),
    waiting_: tuple = (),
    *,
    policy: Policy = Policy.FIFO,
    starvation: int | None = None,
    now: datetime = NOW,
) -> ClusterSnapshot:
    return ClusterSnapshot(
        capacity=capacity,
        running=tuple(running_),
        waiting=tuple(waiting_),
        now=now,
        policy=policy,
        starvation_after_seconds=starvation,
    )


def started_ids(result: Plan) -> list[int]:
    return [s.deployment_id for s in result.starts]


def queue_ids(result: Plan) -> list[int]:
    return [e.deployment_id for e in result.queue]


def reason_of(result: Plan, deployment_id: int) -> str:
    return next(e.reason for e in result.queue if e.deployment_id == deployment_id)


@pytest.mark.parametrize("policy", POLICIES)
def test_empty_cluster_starts_what_fits_in_queue_order(policy: Policy) -> None:
    result = plan(
        snapshot(
            cpu(4, 8192),
            waiting_=(
                waiting(1, cpu(2, 4096), queued=1),
                waiting(2, cpu(2, 4096), queued=2),
                waiting(3, cpu(2, 4096), queued=3),
            ),
            policy=policy,
        )
    )
    assert started_ids(result) == [1, 2]
    assert result.preemptions == ()
    assert [(e.deployment_id, e.position) for e in result.queue] == [(3, 1)]
    assert reason_of(result, 3) == (
        "needs 2 CPU, 0 CPU free; non-preemptible or equal- or higher-priority work holds "
        "4 CPU of 4 CPU; needs 4096 MiB, 0 MiB free; non-preemptible or equal- or "
        "higher-priority work holds 8192 MiB of 8192 MiB"
    )


def test_backfill_lets_a_later_smaller_deployment_start() -> None:
    result = plan(
        snapshot(
            cpu(4),
            running_=(running(1, cpu(2)),),
            waiting_=(waiting(2, cpu(3), queued=1), waiting(3, cpu(1), queued=2)),
        )
    )
    assert started_ids(result) == [3]
    assert queue_ids(result) == [2]


def test_priority_then_queue_time_then_id() -> None:
    result = plan(
        snapshot(
            cpu(2),
            waiting_=(
                waiting(5, cpu(1), priority=0, queued=0),
                waiting(4, cpu(1), priority=1, queued=9),
                waiting(3, cpu(1), priority=1, queued=5),
                waiting(2, cpu(1), priority=1, queued=5),
            ),
        )
    )
    assert started_ids(result) == [2, 3]
    assert queue_ids(result) == [4, 5]


def test_worked_preemption_two_victims_needed_one_pruned() -> None:
    """Candidates in preference order: 1 (priority 1), then 2 (priority 2, started last),
    then 3 (priority 2, started first). Deployment 10 needs 8 CPU with none free: the
    shortest prefix that makes room is 1, 2, 3 (9 CPU); the reverse pass keeps 3 and 2
    (without either, 5 CPU is too little) and drops 1 (2 and 3 free 8 CPU on their own).
    Deployment 4 is non-preemptible and is never touched. Had 1 been preempted too, 5
    (same priority, ahead of 1 in the queue) would have taken its core."""
    result = plan(
        snapshot(
            cpu(10),
            running_=(
                running(1, cpu(1), priority=1, started=30),
                running(2, cpu(4), priority=2, started=20),
                running(3, cpu(4), priority=2, started=10),
                running(4, cpu(1), priority=3, preemptible=False),
            ),
            waiting_=(waiting(10, cpu(8), priority=5), waiting(5, cpu(1), priority=1)),
        )
    )
    assert result.starts == (Start(10, preempted=(2, 3)),)
    assert result.preemptions == (Preemption(2, 10), Preemption(3, 10))
    # Victims go back to the queue at their original place (queued at 10 s and 20 s).
    assert queue_ids(result) == [3, 2, 5]
    assert reason_of(result, 2) == (
        "needs 4 CPU, 0 CPU free; 1 CPU more could be freed by preempting lower-priority "
        "work, still 3 CPU short"
    )


def test_the_reverse_pass_prunes_the_last_taken_victim_first() -> None:
    """Candidates in preference order 1 (2 CPU), 2 (3 CPU), 3 (9 CPU); 10 CPU needed. The
    prefix is all three; going back from the last taken, 3 stays (5 CPU without it), 2
    goes (11 CPU without it), 1 stays (9 CPU without it): 1 and 3 are preempted. Pruning
    from the first taken would stop 2 and 3 instead."""
    result = plan(
        snapshot(
            cpu(14),
            running_=(
                running(1, cpu(2), started=30),
                running(2, cpu(3), started=20),
                running(3, cpu(9), started=10),
            ),
            waiting_=(waiting(10, cpu(10), priority=5),),
        )
    )
    assert result.starts == (Start(10, preempted=(1, 3)),)


@pytest.mark.parametrize("field", ["cpu", "ram_mb"])
def test_victims_that_free_one_unit_too_little_are_not_enough(field) -> None:
    """1 unit free; 10 needs 1,000 more. The newest victim, 2, frees 999: one unit short,
    so the oldest, 1, is taken too, and alone it is enough: only 1 is preempted."""

    def amount(n: int) -> Resources:
        return Resources(**{"cpu": 0, "ram_mb": 0, "gpu": 0, field: n})

    result = plan(
        snapshot(
            amount(2000),
            running_=(running(1, amount(1000), started=10), running(2, amount(999), started=20)),
            waiting_=(waiting(10, amount(1001), priority=5),),
        )
    )
    assert result.starts == (Start(10, preempted=(1,)),)


def test_most_recently_started_is_preempted_first_among_equals() -> None:
    result = plan(
        snapshot(
            cpu(4),
            running_=(
                running(1, cpu(2), priority=1, started=10),
                running(2, cpu(2), priority=1, started=20),
            ),
            waiting_=(waiting(10, cpu(2), priority=2),),
        )
    )
    assert result.starts == (Start(10, preempted=(2,)),)


def test_no_preemption_when_the_preemptor_still_would_not_fit() -> None:
    result = plan(
        snapshot(
            cpu(8),
            running_=(
                running(1, cpu(2), priority=1),
                running(2, cpu(6), priority=3, preemptible=False),
            ),
            waiting_=(waiting(10, cpu(4), priority=2),),
        )
    )
    assert result.starts == () and result.preemptions == ()
    assert reason_of(result, 10) == (
        "needs 4 CPU, 0 CPU free; 2 CPU more could be freed by preempting lower-priority "
        "work, still 2 CPU short"
    )


def test_equal_priority_and_non_preemptible_work_is_never_preempted() -> None:
    result = plan(
        snapshot(
            cpu(4),
            running_=(
                running(1, cpu(2), priority=5),
                running(2, cpu(2), priority=1, preemptible=False),
            ),
            waiting_=(waiting(10, cpu(2), priority=5),),
        )
    )
    assert not result.changed


def test_victims_are_reconsidered_in_the_same_plan() -> None:
    """Deployment 10 preempts 1 (8 GB of RAM); 1 goes back to the queue, and the smaller
    deployment 2 that waited behind it now fits in what 10 left."""
    result = plan(
        snapshot(
            cpu(4, 8192),
            running_=(running(1, cpu(2, 8192), priority=1),),
            waiting_=(
                waiting(10, cpu(1, 4096), priority=5),
                waiting(2, cpu(1, 4096), priority=1, queued=100),
            ),
        )
    )
    assert result.starts == (Start(10, preempted=(1,)), Start(2))
    assert queue_ids(result) == [1]


def test_plan_is_net_when_a_victim_comes_back() -> None:
    """10 preempts 1 (lowest priority); then 11 preempts 2, whose room lets 1 run again.
    Net, 1 never stopped: it is neither started nor preempted, and only 2 is a victim."""
    result = plan(
        snapshot(
            cpu(10, 10),
            running_=(
                running(1, cpu(4, 4), priority=5),
                running(2, cpu(6, 6), priority=6),
            ),
            waiting_=(
                waiting(10, cpu(4, 4), priority=10),
                waiting(11, cpu(2, 2), priority=8),
            ),
        )
    )
    assert result.starts == (Start(10), Start(11, preempted=(2,)))
    assert result.preemptions == (Preemption(2, 11),)
    assert queue_ids(result) == [2]


def test_request_larger_than_the_cluster_waits_with_its_reason() -> None:
    result = plan(snapshot(cpu(8, 1024), waiting_=(waiting(1, cpu(16, 512, gpu=1)),)))
    assert reason_of(result, 1) == (
        "request exceeds the cluster's capacity (needs 16 CPU, capacity 8 CPU; "
        "needs 1 GPU, capacity 0 GPU)"
    )


def test_fractional_cpu_and_gpu_reason() -> None:
    result = plan(
        snapshot(
            Resources(2500, 4096, 2),
            running_=(
                running(1, Resources(500, 0, 1), priority=0),
                running(2, Resources(1500, 0, 1), priority=9, preemptible=False),
            ),
            waiting_=(waiting(3, Resources(750, 4096, 2), priority=1),),
        )
    )
    assert reason_of(result, 3) == (
        "needs 2 GPU, 0 GPU free; 1 GPU more could be freed by preempting lower-priority "
        "work, still 1 GPU short"
    )


def test_zero_request_always_fits() -> None:
    result = plan(snapshot(Resources(0, 0, 0), waiting_=(waiting(1, Resources()),)))
    assert started_ids(result) == [1]


# -- starvation and reservations ------------------------------------------------------


def test_starving_deployment_is_considered_first_in_its_priority() -> None:
    result = plan(
        snapshot(
            cpu(4),
            running_=(running(1, cpu(3), priority=0),),
            waiting_=(
                waiting(2, cpu(1), priority=0, queued=3000),
                waiting(3, cpu(1), priority=0, queued=3500),
                waiting(4, cpu(2), priority=0, queued=0),  # waiting 3600 s > 600 s
            ),
            starvation=600,
        )
    )
    assert result.starts == ()
    entries = {e.deployment_id: e for e in result.queue}
    assert queue_ids(result) == [4, 2, 3]
    assert entries[4].reserved and not entries[2].reserved
    assert entries[4].reason == (
        "reserved: waiting longer than 600 s; no equal- or lower-priority deployment may "
        "start in the room it needs; needs 2 CPU, 1 CPU free; non-preemptible or equal- "
        "or higher-priority work holds 3 CPU of 4 CPU"
    )
    assert entries[2].reason == (
        "held back: the room it needs is reserved for deployment 4 (waiting longer than 600 s)"
    )


def test_reservation_does_not_hold_back_higher_priority_work() -> None:
    result = plan(
        snapshot(
            cpu(4),
            running_=(running(1, cpu(3), priority=5, preemptible=False),),
            waiting_=(
                waiting(2, cpu(2), priority=0, queued=0),  # starving, cannot start
                waiting(3, cpu(1), priority=1, queued=3000),  # higher: not affected
                waiting(4, cpu(1), priority=0, queued=3000),  # equal: held back
            ),
            starvation=600,
        )
    )
    assert started_ids(result) == [3]
    assert queue_ids(result) == [2, 4]


def test_reservations_stack_and_are_clamped_to_the_free_room() -> None:
    """Two starving deployments each hold what is free when they are met: 5 reserves the
    one free GPU; 6 finds none left to hold, yet 7 (equal priority) may not start."""
    result = plan(
        snapshot(
            Resources(4000, 0, 2),
            running_=(running(1, Resources(1000, 0, 1), priority=9, preemptible=False),),
            waiting_=(
                waiting(5, Resources(0, 0, 2), queued=0),
                waiting(6, Resources(0, 0, 2), queued=1),
                waiting(7, Resources(0, 0, 1), queued=3000),
                waiting(8, Resources(1000, 0, 0), queued=3000),  # CPU only: not held back
            ),
            starvation=600,
        )
    )
    assert started_ids(result) == [8]
    assert [(e.deployment_id, e.reserved) for e in result.queue] == [
        (5, True),
        (6, True),
        (7, False),
    ]
    assert reason_of(result, 7) == (
        "held back: the room it needs is reserved for deployment 5 (waiting longer than 600 s)"
    )


@pytest.mark.parametrize(
    ("capacity", "fixed", "first", "second", "later"),
    [
        # The CPU left free is not all held, though it is below the RAM held.
        (Resources(8000, 10000, 0), Resources(4000, 1808, 0), Resources(1000, 9000, 0),
         Resources(2000, 9000, 0), Resources(2000, 0, 0)),
        # The RAM left free (4 MiB) is not held, though it is no more than the GPUs held.
        (Resources(8000, 4, 4), Resources(4000, 0, 0), Resources(5000, 0, 4),
         Resources(5000, 4, 0), Resources(0, 4, 0)),
    ],
)  # fmt: skip
def test_a_second_reservation_holds_what_the_first_left_free_in_each_dimension(
    capacity, fixed, first, second, later
) -> None:
    """Two starving deployments that do not fit: the first holds part of the free room,
    the second the rest of what it needs, dimension by dimension, so that a later one of
    the same priority needing that rest is held back by the second."""
    result = plan(
        snapshot(
            capacity,
            running_=(running(1, fixed, priority=9, preemptible=False),),
            waiting_=(
                waiting(5, first, queued=0),
                waiting(6, second, queued=1),
                waiting(8, later, queued=3000),  # not starving
            ),
            starvation=600,
        )
    )
    assert started_ids(result) == []
    assert reason_of(result, 8) == (
        "held back: the room it needs is reserved for deployment 6 (waiting longer than 600 s)"
    )


def test_starving_deployment_may_still_preempt_lower_priority_work() -> None:
    result = plan(
        snapshot(
            cpu(4),
            running_=(running(1, cpu(4), priority=0),),
            waiting_=(waiting(2, cpu(4), priority=1, queued=0),),
            starvation=60,
        )
    )
    assert result.starts == (Start(2, preempted=(1,)),)


def test_impossible_request_holds_no_reservation() -> None:
    """A request beyond capacity can never start: reserving room for it would idle the
    cluster for ever, so it does not."""
    result = plan(
        snapshot(
            cpu(4),
            waiting_=(waiting(1, cpu(8), queued=0), waiting(2, cpu(1), queued=3000)),
            starvation=60,
        )
    )
    assert started_ids(result) == [2]
    assert not result.queue[0].reserved


class _Cluster:
    """A tiny simulated cluster: plan, apply the plan, let time pass, let work finish."""

    def __init__(self, capacity: Resources, starvation: int | None) -> None:
        self.capacity, self.starvation = capacity, starvation
        self.running: dict[int, tuple[RunningDeployment, datetime]] = {}  # (row, ends at)
        self.waiting: dict[int, tuple[WaitingDeployment, timedelta]] = {}  # (row, runs for)
        self.started_at: dict[int, datetime] = {}

    def submit(self, deployment: WaitingDeployment, runs_for: timedelta) -> None:
        self.waiting[deployment.id] = (deployment, runs_for)

    def tick(self, now: datetime) -> None:
        for id_, (_, ends) in list(self.running.items()):
            if ends <= now:
                del self.running[id_]
        result = plan(
            ClusterSnapshot(
                capacity=self.capacity,
                running=tuple(r for r, _ in self.running.values()),
                waiting=tuple(w for w, _ in self.waiting.values()),
                now=now,
                starvation_after_seconds=self.starvation,
            )
        )
        assert result.preemptions == ()  # one priority: nothing may be preempted
        for start in result.starts:
            row, runs_for = self.waiting.pop(start.deployment_id)
            self.started_at[row.id] = now
            self.running[row.id] = (
                RunningDeployment(
                    row.id, row.resources, row.priority, True, now, queued_at=row.queued_at
                ),
                now + runs_for,
            )


@pytest.mark.parametrize(("starvation", "starts_at"), [(600, 1000), (None, None)])
def test_large_deployment_among_a_stream_of_small_ones(
    starvation: int | None, starts_at: int | None
) -> None:
    """A 4-CPU deployment (queued at 50 s) waits behind a steady stream of 1-CPU ones of
    its priority: one arrives every 100 s and runs 400 s, so one core frees every 100 s
    and the next small one backfills it. Without protection that goes on for ever. With
    a 600 s reservation, from 700 s (its first pass after 650 s) no small one may take a
    freed core; the last small ones, started at 600 s, end at 1000 s, and it starts."""
    cluster = _Cluster(cpu(4), starvation)
    second = timedelta(seconds=1)
    for i in range(4):  # the cluster is full, ending one core every 100 s
        cluster.submit(
            WaitingDeployment(i, cpu(1), 0, True, T0 + i * second), (i + 1) * 100 * second
        )
    cluster.tick(T0)
    cluster.submit(WaitingDeployment(1000, cpu(4), 0, True, T0 + 50 * second), 400 * second)
    for tick in range(1, 40):
        now = T0 + tick * 100 * second
        cluster.submit(WaitingDeployment(tick + 10, cpu(1), 0, True, now), 400 * second)
        cluster.tick(now)
    if starts_at is None:
        assert 1000 not in cluster.started_at
        assert len(cluster.started_at) == 4 + 39  # every small one started on arrival
        return
    assert cluster.started_at[1000] == T0 + starts_at * second
    held_back = [i for i in range(17, 20)]  # arrived at 700-900 s: waited for the big one
    assert all(cluster.started_at[i] >= T0 + (starts_at + 400) * second for i in held_back)


def test_plan_is_deterministic_whatever_the_input_order() -> None:
    run = (running(1, cpu(1), 1, started=5), running(2, cpu(2), 0, started=5))
    wait = tuple(waiting(i, cpu(1 + i % 3), i % 2, queued=i % 4) for i in range(10, 20))
    a = plan(snapshot(cpu(6), run, wait))
    b = plan(snapshot(cpu(6), run[::-1], wait[::-1]))
    assert a == b


# -- pack -------------------------------------------------------------------------------


def test_pack_starts_more_than_fifo_by_skipping_a_large_head_of_queue() -> None:
    wait = (
        waiting(1, cpu(3), queued=1),
        waiting(2, cpu(1), queued=2),
        waiting(3, cpu(1), queued=3),
        waiting(4, cpu(1), queued=4),
        waiting(5, cpu(1), queued=5),
    )
    assert started_ids(plan(snapshot(cpu(4), waiting_=wait))) == [1, 2]
    assert sorted(started_ids(plan(snapshot(cpu(4), waiting_=wait, policy=Policy.PACK)))) == [
        2,
        3,
        4,
        5,
    ]


def test_pack_prefers_utilization_among_equally_many() -> None:
    wait = (
        waiting(1, cpu(1), queued=1),
        waiting(2, cpu(2), queued=2),
        waiting(3, cpu(3), queued=3),
    )
    assert started_ids(plan(snapshot(cpu(4), waiting_=wait))) == [1, 2]
    assert sorted(started_ids(plan(snapshot(cpu(4), waiting_=wait, policy=Policy.PACK)))) == [1, 3]


def test_pack_prefers_earlier_queue_order_among_equals() -> None:
    wait = tuple(waiting(i, cpu(1), queued=10 - i) for i in range(1, 6))  # 5 was queued first
    result = plan(snapshot(cpu(2), waiting_=wait, policy=Policy.PACK))
    assert sorted(started_ids(result)) == [4, 5]


def test_pack_chooses_higher_priority_work_that_leaves_room_below() -> None:
    """One of 1 and 2 (priority 1) can run. Fifo takes 1, first in the queue; pack takes
    2, which leaves room for 3 (priority 0): one at each priority beats one at the top."""
    wait = (
        waiting(1, cpu(1, 3072), priority=1, queued=1),
        waiting(2, cpu(3, 1024), priority=1, queued=2),
        waiting(3, cpu(1, 2048), priority=0, queued=3),
    )
    assert started_ids(plan(snapshot(cpu(4, 3072), waiting_=wait))) == [1]
    pack = plan(snapshot(cpu(4, 3072), waiting_=wait, policy=Policy.PACK))
    assert sorted(started_ids(pack)) == [2, 3]


def test_pack_never_stops_running_work_for_its_own_priority() -> None:
    """Four small deployments would count more than the one running, but a running
    deployment is only ever stopped for higher-priority work."""
    result = plan(
        snapshot(
            cpu(4),
            running_=(running(1, cpu(4), priority=0),),
            waiting_=tuple(waiting(i, cpu(1), priority=0) for i in range(2, 6)),
            policy=Policy.PACK,
        )
    )
    assert not result.changed


def test_pack_stops_only_what_higher_priority_work_needs_most_recent_first() -> None:
    """10 needs 384 MiB and 256 are free: stopping 4 or 5 both make room, keep 3 running
    at priority 0 and start 10. Utilization would stop 4 (the smaller); guarantee 5's
    order, which breaks ties before utilization, stops 5 (same start, higher id)."""
    result = plan(
        snapshot(
            Resources(0, 1024, 0),
            running_=(
                running(2, Resources(0, 128, 0), preemptible=False),
                running(3, Resources(0, 128, 0), preemptible=False),
                running(4, Resources(0, 128, 0)),
                running(5, Resources(0, 384, 0)),
            ),
            waiting_=(waiting(10, Resources(0, 384, 0), priority=1),),
            policy=Policy.PACK,
        )
    )
    assert result.starts == (Start(10, preempted=(5,)),)


def test_pack_reservations_hold_as_under_fifo() -> None:
    result = plan(
        snapshot(
            cpu(4),
            running_=(running(1, cpu(3), priority=0, preemptible=False),),
            waiting_=(
                waiting(2, cpu(1), priority=0, queued=3000),
                waiting(4, cpu(2), priority=0, queued=0),  # starving
            ),
            starvation=600,
            policy=Policy.PACK,
        )
    )
    assert result.starts == ()
    assert [(e.deployment_id, e.reserved) for e in result.queue] == [(4, True), (2, False)]


def test_pack_does_not_stop_what_jointly_higher_priority_work_does_not_need() -> None:
    """Fifo preempts for one start at a time: 20 needs 8 CPU and takes 12 (the most
    recently started at priority 14); then 6 needs more and takes 3. Jointly, stopping 3
    alone makes room for both, so pack keeps 12 running. Fifo ends with two running at
    priority 14 (1 and 8, in the room the two victims left), pack with one (12): pack's
    rule, "never stopped for others of the same or lower priority", comes first."""
    top, low = 81, 14
    run = (
        running(2, cpu(16, 1024), top, started=3000),
        running(3, cpu(16, 1024), low, started=100),
        running(12, cpu(8, 65536, gpu=1), low, started=200),
        running(15, cpu(0.5, 16384), top, started=3100),
    )
    wait = (
        waiting(1, cpu(0.5, 16384), low, queued=10),
        waiting(5, cpu(16, 8192), top, queued=20),
        waiting(20, cpu(8, 1024), top, queued=30),
        waiting(13, cpu(2, 8192), top, queued=40),
        waiting(18, cpu(2, 131072), top, queued=50),
        waiting(6, cpu(4, 8192), top, queued=60),
        waiting(8, cpu(4, 1024), low, queued=60),
        waiting(7, cpu(4, 8192), top, queued=70),
    )
    capacity = cpu(64, 262144, gpu=8)
    fifo = plan(snapshot(capacity, run, wait))
    assert fifo.preemptions == (Preemption(12, 20), Preemption(3, 6))
    assert {1, 8} <= set(started_ids(fifo))
    pack = plan(snapshot(capacity, run, wait, policy=Policy.PACK))
    assert [p.victim_id for p in pack.preemptions] == [3]
    assert set(started_ids(pack)) == {5, 20, 13, 18, 6, 7}


def test_pack_keeps_running_work_unless_higher_priority_work_needs_its_room() -> None:
    """Priority 96 starts all five of its waiting deployments; of the running work at 95
    only 16 has to stop for them (it is the most recently started, and one victim is
    enough). Pack then fills what is left: 18 at priority 95, 27 at priority 16. A search
    allowed to stop more of priority 95 than 96 needs (to start 95's own waiting work in
    their place) aims for a state that stopping only what is needed cannot reach, and
    ends with less; this pins the rule that forbids it."""
    run = (
        running(3, cpu(4, 65536, gpu=1), 95, started=1),
        running(7, cpu(8, 16384, gpu=1), 95, started=2),
        running(16, cpu(8, 8192), 95, started=3),
        running(4, cpu(16, 1024), 96, started=4),
    )
    wait = (
        waiting(22, cpu(2, 32768), 95, queued=1),
        waiting(19, cpu(2, 16384), 95, queued=2),
        waiting(10, cpu(4, 1024), 96, queued=3),
        waiting(27, cpu(1, 16384), 16, queued=4),
        waiting(25, cpu(16, 8192), 96, queued=5),
        waiting(26, cpu(1, 65536), 96, queued=6),
        waiting(18, cpu(2, 1024), 95, queued=7),
        waiting(21, cpu(8, 65536, gpu=2), 96, queued=8),
        waiting(9, cpu(4, 16384, gpu=2), 96, queued=9),
    )
    result = plan(snapshot(cpu(64, 262144, gpu=8), run, wait, policy=Policy.PACK))
    assert set(started_ids(result)) == {10, 25, 26, 21, 9, 18, 27}
    assert result.preemptions == (Preemption(16, 21),)
