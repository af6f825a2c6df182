"""The planner's small parts, each against an oracle written here: the queue's sentences
(planner/reasons.py) and pack's comparison of outcomes (planner/policies/pack.py). The
mutation run of 2026-12-06 found these reached by the allocation tests only in part."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from planner import Policy, plan, reasons
from planner.engine import Engine
from planner.policies.pack import _compare_counts, _counts, _stops_as_pack_would
from scheduler.tests.test_allocation import cpu, running, snapshot, started_ids, waiting

# --- the sentences, word for word --------------------------------------------------------

CAPACITY = (8000, 4096, 1)


def test_a_shortage_with_lower_priority_room_says_what_is_still_short():
    text = reasons.shortage(
        request=(4000, 1024, 0),
        usable=(1000, 2048, 0),
        held=(500, 0, 0),
        lower=(1000, 0, 0),
        capacity=CAPACITY,
    )
    assert text == (
        "needs 4 CPU, 1 CPU free (0.5 CPU more reserved for longer-waiting work); "
        "1 CPU more could be freed by preempting lower-priority work, still 2 CPU short"
    )


def test_a_shortage_without_lower_priority_room_says_what_others_hold():
    text = reasons.shortage(
        request=(4000, 1024, 0),
        usable=(1000, 2048, 0),
        held=(500, 0, 0),
        lower=(0, 0, 0),
        capacity=CAPACITY,
    )
    # Held by work it may not stop: 8 - 1 free - 0.5 reserved.
    assert text == (
        "needs 4 CPU, 1 CPU free (0.5 CPU more reserved for longer-waiting work); "
        "non-preemptible or equal- or higher-priority work holds 6.5 CPU of 8 CPU"
    )


def test_a_request_that_fits_can_start_at_the_next_pass():
    text = reasons.shortage(
        request=(1000, 1024, 0),
        usable=(1000, 2048, 0),
        held=(0, 0, 0),
        lower=(0, 0, 0),
        capacity=CAPACITY,
    )
    assert text == "can start at the next scheduling pass"


def test_exceeding_the_capacity_names_only_the_dimensions_beyond_it():
    # CPU equal to the capacity fits; only the memory is beyond it.
    text = reasons.exceeds_capacity((8000, 5000, 0), CAPACITY)
    assert text == "request exceeds the cluster's capacity (needs 5000 MiB, capacity 4096 MiB)"


# --- pack's comparison: the number running at each priority, from the highest down -------

counts = st.dictionaries(st.sampled_from([0, 5, 10, 1000]), st.integers(0, 4), max_size=4)


@given(a=counts, b=counts)
def test_outcomes_compare_by_the_count_at_each_priority_from_the_highest(a, b):
    levels = sorted(set(a) | set(b), reverse=True)
    mine = [a.get(p, 0) for p in levels]
    theirs = [b.get(p, 0) for p in levels]
    expected = (mine > theirs) - (mine < theirs)  # lexicographic, higher priority first
    assert _compare_counts(a, b) == expected


def test_a_higher_level_outweighs_any_number_below_it():
    assert _compare_counts({10: 1}, {10: 0, 0: 9}) == 1
    assert _compare_counts({10: 0, 0: 9}, {10: 1}) == -1
    assert _compare_counts({5: 0}, {}) == 0  # none at a level is no level


@given(st.lists(st.sampled_from([0, 5, 10]), max_size=6))
def test_the_counts_are_those_running_per_priority(priorities):
    engine = Engine(
        snapshot(
            cpu(64),
            tuple(running(i, cpu(1), priority) for i, priority in enumerate(priorities, 1)),
        )
    )
    assert _counts(engine) == dict(Counter(priorities))


def test_pack_counts_running_work_of_the_top_waiting_priority_as_taken_room():
    """Running preemptible work at the top waiting priority is not in play (nothing may
    preempt its equal) and its room is not free: pack starts the two 1-CPU deployments
    in the 2 CPU left, where a search that thought all 4 CPU free would choose all three
    and the walk could then start only the 2-CPU one."""
    state = snapshot(
        cpu(4),
        (running(1, cpu(2), 5),),
        (
            waiting(2, cpu(2), 5, queued=0),
            waiting(3, cpu(1), 5, queued=1),
            waiting(4, cpu(1), 5, queued=2),
        ),
        policy=Policy.PACK,
    )
    assert started_ids(plan(state)) == [3, 4]


def test_a_victim_the_preemptor_needed_is_stopped_as_pack_would():
    """fifo stops a 3-CPU deployment for a 2-CPU one on 4 CPU: the two do not fit
    together, so pack would have stopped it too (fifo's plan may then be kept)."""
    fifo = Engine(snapshot(cpu(4), (running(1, cpu(3), 0),), (waiting(2, cpu(2), 10),)))
    fifo.settle()
    assert sorted(fifo.running) == [2]
    assert _stops_as_pack_would(fifo)
