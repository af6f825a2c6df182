"""The heuristic behind ``pack`` for long queues: level by level, a surrogate greedy
fill, then reshaping within a step budget (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Sequence

from planner.packsearch.problem import (
    Bound,
    Item,
    Level,
    Problem,
    Solution,
    Vec,
    add,
    dominant_share,
    dot,
    fits,
    minus,
    place_starving,
    running_below,
    surrogate_directions,
    total,
    weights,
)

# Steps (fit checks) the heuristic's reshaping passes may take: about 10 ms at most.
STEP_BUDGET = 60_000


def heuristic(problem: Problem, budget: int = STEP_BUDGET) -> Solution:
    weight = weights(problem.capacity)
    directions = surrogate_directions(weight)
    room, chosen, counts, util = problem.room, [], [], 0
    steps = [budget]
    lower = running_below(problem.levels)
    # Each level's fill is chosen looking one level ahead, through that level's bound.
    ahead = [
        Bound((*level.running, *level.starving, *level.waiting), directions, weight)
        for level in (*problem.levels[1:], Level(0, (), (), ()))
    ]
    levels = problem.levels
    for level_index, level in enumerate(levels):
        kept, room = _keep_most(level.running, room)
        started, room = place_starving(level, room, lower[level_index], {i.id for i in kept})
        picked, room = _best_fill(
            level.waiting, room, weight, ahead[level_index], directions, steps
        )
        if level_index + 1 < len(levels):
            below = levels[level_index + 1]
            demand = total((*below.running, *below.starving, *below.waiting))
            picked, room = _spare(picked, room, level.waiting, demand, steps)
        chosen.extend(i.id for i in (*kept, *started, *picked))
        counts.append(len(kept) + len(started) + len(picked))
        util += sum(dot(weight, i.need) for i in (*kept, *started, *picked))
    return Solution(frozenset(chosen), tuple(counts), util, proven=False)


def _keep_in_order(items: Sequence[Item], room: Vec) -> tuple[list[Item], Vec]:
    """Greedy in order: maximal, and drops the latest-listed first."""
    kept = []
    for item in items:
        if fits(item.need, room):
            kept.append(item)
            room = minus(room, item.need)
    return kept, room


def _keep_most(items: Sequence[Item], room: Vec) -> tuple[list[Item], Vec]:
    """A maximal set of running deployments to keep, as many as the greedy finds: in
    start order (guarantee 5's preference: the most recently started stops first) unless smallest first keeps more."""
    in_order = _keep_in_order(items, room)
    smallest = _keep_in_order(sorted(items, key=lambda i: dominant_share(i, room)), room)
    return smallest if len(smallest[0]) > len(in_order[0]) else in_order


# Weightings of the room's dimensions for the surrogate greedy: each alone, each pair,
# all three, and the lopsided mixes in between (quarters of the simplex).
_MIXES = tuple((a / 4, b / 4, (4 - a - b) / 4) for a in range(5) for b in range(5 - a))


def _best_fill(
    items: Sequence[Item],
    room: Vec,
    weight: Vec,
    ahead: Bound,
    directions: Sequence[Vec],
    steps: list[int],
) -> tuple[list[Item], Vec]:
    """The waiting ones of one level, to start as many as possible.

    Surrogate greedy: for several weightings of the dimensions, each normalized by the
    room left (so that a scarce resource weighs more), fill in order of the weighted size;
    also in queue order and in order of dominant share. The fill starting the most wins;
    among those, the one leaving the next level the most (by its count bound), then the
    most room. It is then improved by one-out refills.
    """
    candidates = [i for i in items if fits(i.need, room)]
    if not candidates:
        return [], room
    scale = [1.0 / r if r > 0 else 0.0 for r in room]
    orders = [candidates, sorted(candidates, key=lambda i: dominant_share(i, room))]
    for mix in _MIXES:
        emphasis = (mix[0] * scale[0], mix[1] * scale[1], mix[2] * scale[2])
        orders.append(
            sorted(
                candidates,
                key=lambda i: (
                    emphasis[0] * i.need[0] + emphasis[1] * i.need[1] + emphasis[2] * i.need[2]
                ),
            )
        )

    def merit(fill: tuple[list[Item], Vec, list[Item]]) -> tuple[int, int, int]:
        left = fill[1]
        sizes = [dot(d, (max(left[0], 0), max(left[1], 0), max(left[2], 0))) for d in directions]
        return (len(fill[0]), ahead.count(sizes), dot(weight, left))

    picked, left, order = max(((*_keep_in_order(o, room), o) for o in orders), key=merit)
    return _improve(picked, left, order, steps)


def _improve(
    picked: list[Item], room: Vec, order: list[Item], steps: list[int]
) -> tuple[list[Item], Vec]:
    """One-out, refill: take out one started deployment (the last in ``order`` first),
    refill its room in ``order``; keep the change when it starts more."""
    rank = {item.id: n for n, item in enumerate(order)}
    chosen = {i.id for i in picked}
    for out in sorted(picked, key=lambda i: rank[i.id], reverse=True):
        if steps[0] <= 0:
            break
        trial_room, added = add(room, out.need), []
        for item in order:
            steps[0] -= 1
            if item.id not in chosen and fits(item.need, trial_room):
                added.append(item)
                trial_room = minus(trial_room, item.need)
        if len(added) >= 2:
            picked = [i for i in picked if i is not out] + added
            chosen = {i.id for i in picked}
            room = trial_room
    return picked, room


def _spare(
    picked: list[Item], room: Vec, items: Sequence[Item], demand: Vec, steps: list[int]
) -> tuple[list[Item], Vec]:
    """Same count, more room for the level below: swap a started deployment for an
    unstarted one of the same level that costs less in the resources the level below
    asks for (``demand``, weighed against the room left), most expensive first."""
    emphasis = [demand[d] / (max(room[d], 0) + 1) for d in range(3)]

    def cost(item: Item) -> float:
        return emphasis[0] * item.need[0] + emphasis[1] * item.need[1] + emphasis[2] * item.need[2]

    chosen = {i.id for i in picked}
    spare = sorted((i for i in items if i.id not in chosen), key=cost)
    for out in sorted(picked, key=cost, reverse=True):
        for n, item in enumerate(spare):
            steps[0] -= 1
            if steps[0] <= 0 or cost(item) >= cost(out):
                break
            if fits(item.need, add(room, out.need)):
                room = minus(add(room, out.need), item.need)
                picked = [item if i is out else i for i in picked]
                spare[n] = out
                spare.sort(key=cost)
                break
    return picked, room


# -- vector helpers -------------------------------------------------------------------
