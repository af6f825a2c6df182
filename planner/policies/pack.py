"""``pack``: choose what runs so as to maximize, in this order, the number running at
each priority from the highest down, then the utilization, then earlier queue order
(API.md, "Policies"); running work is never stopped for work of its own or a lower
priority.

``planner.packsearch`` chooses the set; the engine realizes that choice with its walk
(victims in guarantee 5's order, among those the search chose), then runs the fifo
fixpoint as a repair step, so that guarantees 3 (no queued deployment could start by
preempting only lower-priority preemptible work) and 4 (no queued deployment fits in the
free room) hold whatever the search did. Should the fifo plan run more at some priority
(from the top) while stopping only what pack's rule allows, it is used instead: that
happens only when the search is not exact (a long queue, or its node budget spent). Fifo
may also run more by breaking pack's rule: preempting for one start at a time, it can
stop two deployments where, jointly, the higher-priority work needs one, and start work
of its own priority in the room left; pack does not.

A waiting deployment that could not start in any plan (its request does not fit in the
capacity minus the non-preemptible running work) and holds no starvation reservation
plays no part: it is left out of the search and does not count as a choice. So the plan
is the same with or without such deployments in the snapshot, which is what lets
``scheduler.incremental`` plan over only the deployments that could use the room.
"""

from __future__ import annotations

from planner.engine import Engine, Job, Target, fits, minus, plus, total
from planner.model import ClusterSnapshot, Plan
from planner.packsearch import Item, Level, Problem, solve


def plan(snapshot: ClusterSnapshot) -> Plan:
    fifo = Engine(snapshot)
    fifo.settle()
    reach = _reach(fifo)
    if not any(_contends(job, reach) for job in fifo.waiting):
        return fifo.result()
    packed = Engine(snapshot, like=fifo)
    problem, in_play = search_problem(packed)
    solution = solve(problem)
    packed.settle(target(packed, solution.chosen, in_play))
    if _compare_counts(_counts(packed), _counts(fifo)) >= 0 or not _stops_as_pack_would(fifo):
        return packed.result()
    return fifo.result()


def search_problem(engine: Engine) -> tuple[Problem, frozenset[int]]:
    """The snapshot as the search sees it, before any change, and the running work it
    may stop ("in play").

    Running work that no waiting deployment outranks, and non-preemptible work, runs
    whatever the plan: it only takes room. Requests beyond the capacity are left out:
    they can never run, and so are those that could not start even with every preemptible
    deployment stopped, unless they hold a starvation reservation (see the module).
    """
    reach = _reach(engine)
    contenders = [job for job in engine.waiting if _contends(job, reach)]
    top = max((job.priority for job in contenders), default=-1)
    in_play = [j for j in engine.running.values() if j.preemptible and j.priority < top]
    fixed = [j for j in engine.running.values() if not (j.preemptible and j.priority < top)]
    room = minus(engine.cap, total(fixed))
    by_level: dict[int, tuple[list[Job], list[Job]]] = {}
    for job in sorted(in_play, key=lambda j: (j.started_at, j.id)):  # earliest first
        by_level.setdefault(job.priority, ([], []))[0].append(job)
    for job in contenders:  # in order of consideration already
        by_level.setdefault(job.priority, ([], []))[1].append(job)
    levels = tuple(
        Level(
            priority=priority,
            running=tuple(Item(j.id, j.request) for j in running),
            starving=tuple(Item(j.id, j.request) for j in waits if j.starving),
            waiting=tuple(Item(j.id, j.request) for j in waits if not j.starving),
            reserving=tuple(
                Item(j.id, j.request)
                for j in sorted((*running, *waits), key=lambda j: j.key)
                if j.starving
            ),
        )
        for priority, (running, waits) in sorted(by_level.items(), reverse=True)
    )
    problem = Problem(capacity=engine.cap, room=room, levels=levels)
    return problem, frozenset(j.id for j in in_play)


def _reach(engine: Engine) -> tuple[int, int, int]:
    """The most room any plan could give a waiting deployment: the capacity minus the
    non-preemptible work that ran before the plan (no plan stops it)."""
    fixed = [j for j in engine.initial_running.values() if not j.preemptible]
    return minus(engine.cap, total(fixed))


def _contends(job: Job, reach: tuple[int, int, int]) -> bool:
    """Whether a waiting deployment plays a part in the search: it could start in some
    plan, or it holds a starvation reservation (it may hold room even if it cannot)."""
    return fits(job.request, reach) or (job.starving and job.possible)


def target(engine: Engine, chosen: frozenset[int], in_play: frozenset[int]) -> Target:
    """What the realizing walk may start, and whom it may preempt."""
    starts = frozenset(j.id for j in engine.waiting if j.id in chosen)
    victims = frozenset(i for i in in_play if i not in chosen)
    return Target(starts=starts, victims=victims)


def _counts(engine: Engine) -> dict[int, int]:
    """How many run at each priority."""
    counts: dict[int, int] = {}
    for job in engine.running.values():
        counts[job.priority] = counts.get(job.priority, 0) + 1
    return counts


def _stops_as_pack_would(engine: Engine) -> bool:
    """Whether every deployment this plan stops was needed by the higher-priority work
    that runs after it: it would not fit beside that work, the running work of its own
    priority that keeps running and the non-preemptible work below it."""
    original = engine.initial_running
    for victim in original.values():
        if victim.id in engine.running:
            continue
        staying = [
            j
            for j in engine.running.values()
            if j.priority > victim.priority
            or (j.priority == victim.priority and j.id in original)
            or (not j.preemptible and j.id in original)
        ]
        if fits(plus(total(staying), victim.request), engine.cap):
            return False
    return True


def _compare_counts(a: dict[int, int], b: dict[int, int]) -> int:
    """-1, 0 or 1 as ``a`` (number running per priority) is worse than, as good as or
    better than ``b``, from the highest priority down."""
    for priority in sorted(a.keys() | b.keys(), reverse=True):
        mine, theirs = a.get(priority, 0), b.get(priority, 0)
        if mine != theirs:
            return 1 if mine > theirs else -1
    return 0
