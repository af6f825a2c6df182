"""The ``pack`` policy's search: which deployments should run.

Pure, on plain ``(cpu millicores, ram MiB, gpu)`` triples; ``scheduler.allocation`` builds
the ``Problem`` and turns the chosen set into starts and preemptions.

The model, level by level from the highest priority down (a level is one priority):

- what always runs (non-preemptible work, and work no waiting deployment outranks) is
  subtracted from the room up front;
- the level's preemptible running deployments keep running unless higher-priority work
  needs their room: the kept set must be *maximal* in the room the higher levels leave
  (lower levels do not count, they are stopped first). This is "never stopped for others
  of the same or lower priority", "lowest priority first" and "no more than needed";
- its starving deployments come first, in order: each starts if it fits, else it holds
  what is free of its request (counting every lower-priority running deployment as
  still there) and that room is closed to the rest of this level and all lower ones;
- then any subset of its other waiting deployments that fits.

Objective, compared lexicographically:
1. the number running at each level, from the highest down;
2. guarantee 5's order among the running deployments stopped: as a vector of "kept"
   flags over the running deployments in play, highest level first and earliest started
   first within a level, the larger vector wins (the most recently started goes first).
   It comes before utilization: guarantee 5 holds on every cluster, so utilization may
   not pick which of two equally numerous sets of victims to stop;
3. the utilization: the sum over dimensions of allocated / capacity, zero-capacity
   dimensions left out (compared exactly, as integers over a common denominator);
4. earlier queue order: the "started" flags over the waiting deployments in order of
   consideration, the larger vector wins.
The last two vectors determine the chosen set, so two different solutions never tie.

Two ways to solve it:

- ``exact``: depth-first branch and bound over the decisions in order (each level's
  running deployments, earliest started first, then its waiting ones), trying "keep" and
  "start" first. It starts from the heuristic's solution and runs twice over the same
  tree, each time within a node budget: first for the counts alone (a subtree is cut
  unless its bound beats the incumbent's counts), then for the tie-breaks among
  solutions with those counts. Bounds at a node: the levels decided so far are exact;
  for the current and each lower level, how many of its remaining deployments could fit
  the room left, by surrogate constraints (what fits a room fits any non-negative
  combination of its dimensions: each dimension alone, and capacity-normalized sums of
  all three and of each pair; for each, how many of the smallest fit); undecided flags
  count as set; the utilization is bounded by the room left, by what remains to place
  and by the k largest that could still be added. Waiting deployments are branched on
  smallest dominant share first; identical requests at one level are started as a prefix
  in queue order (which the tie-break prefers anyway). ``proven`` says whether both
  searches finished.
- ``heuristic``: level by level. Running work: the larger of two maximal sets (kept in
  start order, or smallest first). Waiting work: a surrogate greedy, filling in order of
  the request weighted by 15 mixes of the dimensions normalized by the room left, and in
  queue order; the fill that starts the most wins, then the one whose leftover room lets
  the next level start the most (by its count bound). Then the started set is reshaped
  without losing count: swaps that spare what the next level asks for, and one-out
  refills that start two for one. Work is counted in steps, not seconds, so that plans
  stay deterministic.

``solve`` picks the exact search up to ``EXACT_LIMIT`` deployments in play (its tables
grow with the square of a level's size; it proves every instance of 10 to 40 of the
benchmark's shapes within a few milliseconds) and the heuristic beyond. Either way
``scheduler.allocation`` realizes the choice and runs the fifo fixpoint after it, so the
guarantees hold whatever the search returns.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

Vec = tuple[int, int, int]

# Beyond this many deployments in play, the heuristic; below, the exact search.
EXACT_LIMIT = 64
# Search nodes each phase of the exact search may visit (a few microseconds each):
# proving the counts, then settling the tie-breaks.
NODE_BUDGETS = (8_000, 4_000)
# Steps (fit checks) the heuristic's reshaping passes may take: about 10 ms at most.
STEP_BUDGET = 60_000


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    need: Vec


@dataclass(frozen=True, slots=True)
class Level:
    """One priority's deployments that are in play (each fits the cluster on its own)."""

    priority: int
    running: tuple[Item, ...]  # preemptible running, earliest started first
    starving: tuple[Item, ...]  # waiting longer than the limit, in order of consideration
    waiting: tuple[Item, ...]  # the other waiting ones, in queue order


@dataclass(frozen=True, slots=True)
class Problem:
    capacity: Vec
    room: Vec  # the capacity minus what runs whatever the plan
    levels: tuple[Level, ...]  # highest priority first


@dataclass(frozen=True, slots=True)
class Solution:
    chosen: frozenset[int]  # running deployments kept and waiting deployments started
    counts: tuple[int, ...]  # how many of them at each level, highest first
    utilization: int  # in units of 1 / (product of the non-zero capacities)
    proven: bool  # the exact search finished: this is the optimum


# (counts, kept flags, utilization, started flags): compared as tuples, as the objective.
Key = tuple[tuple[int, ...], tuple[int, ...], int, tuple[int, ...]]


def solve(problem: Problem) -> Solution:
    size = sum(len(lv.running) + len(lv.starving) + len(lv.waiting) for lv in problem.levels)
    if size <= EXACT_LIMIT:
        return exact(problem)
    return heuristic(problem)


def weights(capacity: Vec) -> Vec:
    """Integer weights w with sum(w[d] * x[d]) proportional to sum(x[d] / capacity[d])
    over the dimensions of non-zero capacity."""
    out = []
    for d in range(3):
        if capacity[d] <= 0:
            out.append(0)
            continue
        w = 1
        for e in range(3):
            if e != d and capacity[e] > 0:
                w *= capacity[e]
        out.append(w)
    return (out[0], out[1], out[2])


def _fits(need: Vec, room: Vec) -> bool:
    return need[0] <= room[0] and need[1] <= room[1] and need[2] <= room[2]


def _sum(items: Sequence[Item]) -> Vec:
    return (
        sum(i.need[0] for i in items),
        sum(i.need[1] for i in items),
        sum(i.need[2] for i in items),
    )


def _hold(need: Vec, room: Vec, lower: Vec) -> Vec:
    """What a starving deployment that does not fit holds: its request, clamped to the
    room that is free now, with every lower-priority running deployment still there."""
    return (
        min(need[0], max(0, room[0] - lower[0])),
        min(need[1], max(0, room[1] - lower[1])),
        min(need[2], max(0, room[2] - lower[2])),
    )


# -- the exact search -----------------------------------------------------------------


def _directions(w: Vec) -> tuple[Vec, ...]:
    """Surrogate constraints for the count bound. Whatever fits a room fits any
    non-negative combination of its dimensions: each dimension alone, and the
    capacity-normalized sums of all three and of each pair (which is what binds when the
    room runs out of two resources at once)."""
    return (
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        w,
        (w[0], w[1], 0),
        (w[0], 0, w[2]),
        (0, w[1], w[2]),
    )


class _Bound:
    """Upper bounds over a fixed set of items.

    ``count``: how many of them fit a room: for each surrogate direction, how many of the
    smallest fit the room's size in that direction; the least over directions.
    ``gain``: the utilization the ``k`` largest of them could add.
    """

    __slots__ = ("prefix", "top")

    def __init__(self, items: Sequence[Item], directions: Sequence[Vec], w: Vec) -> None:
        self.prefix = [_prefix_sums(sorted(_dot(d, i.need) for i in items)) for d in directions]
        self.top = _prefix_sums(sorted((_dot(w, i.need) for i in items), reverse=True))

    def count(self, sizes: Sequence[int]) -> int:
        """``sizes``: the room measured in each direction (see ``_Exact._sizes``)."""
        return min(map(bisect_right, self.prefix, sizes)) - 1

    def gain(self, k: int) -> int:
        return self.top[min(max(k, 0), len(self.top) - 1)]


def _prefix_sums(values: Sequence[int]) -> list[int]:
    sums, acc = [0], 0
    for value in values:
        acc += value
        sums.append(acc)
    return sums


class _LevelData:
    """Per-level tables, computed once per search.

    Running deployments are branched on in the objective's order (earliest started
    first). Waiting ones are branched on smallest dominant share first, so that good
    solutions come early; identical requests sit side by side, in queue order, and are
    started as a prefix (skipping one skips the identical ones after it): any optimum can
    be brought to that form without changing its value, and the queue-order tie-break
    prefers it.
    """

    def __init__(
        self,
        level: Level,
        lower_running: Vec,
        directions: Sequence[Vec],
        capacity: Vec,
        offsets: tuple[int, int],
    ) -> None:
        w = directions[3]
        self.level = level
        self.running_total = _sum(level.running)
        self.lower_running = lower_running  # all preemptible running below this level
        runs = level.running
        self.keep_at = [offsets[0] + i for i in range(len(runs))]  # flag positions
        ranked = sorted(
            range(len(level.waiting)),
            key=lambda q: (_share(level.waiting[q], capacity), level.waiting[q].need, q),
        )
        self.waits = [level.waiting[q] for q in ranked]
        self.start_at = [offsets[1] + q for q in ranked]
        self.run_end = [
            next(
                (j for j in range(i + 1, len(ranked)) if self.waits[j].need != item.need),
                len(ranked),
            )
            for i, item in enumerate(self.waits)
        ]
        rest = (*level.starving, *level.waiting)
        self.bound_running = [
            _Bound((*runs[i:], *rest), directions, w) for i in range(len(runs) + 1)
        ]
        self.bound_waiting = [
            _Bound(self.waits[i:], directions, w) for i in range(len(self.waits) + 1)
        ]
        self.left_running = [_sum((*runs[i:], *rest)) for i in range(len(runs) + 1)]
        self.left_waiting = [_sum(self.waits[i:]) for i in range(len(self.waits) + 1)]
        self.runs_after = [_sum(runs[i + 1 :]) for i in range(len(runs))]


class _Exact:
    """Two depth-first searches over the same tree, each with its node budget.

    First the counts: a subtree is cut unless its bound beats the incumbent's counts,
    which settles the main objective quickly. Then the tie-breaks (victims' order,
    utilization, queue order) among solutions with those counts, starting from the best
    found: their bounds are weaker, and they matter less.
    """

    def __init__(self, problem: Problem, budgets: tuple[int, int]) -> None:
        self.problem = problem
        self.w = w = weights(problem.capacity)
        self.directions = _directions(w)
        self.budgets = budgets
        self.budget, self.nodes, self.ties = budgets[0], 0, False
        self.proven = True
        levels = problem.levels
        lower_running = _lower_running(levels)
        self.data: list[_LevelData] = []
        offsets = (0, 0)
        for li, level in enumerate(levels):
            data = _LevelData(level, lower_running[li], self.directions, problem.capacity, offsets)
            self.data.append(data)
            offsets = (offsets[0] + len(level.running), offsets[1] + len(level.waiting))
        # Everything at the levels below each level: for the utilization bound.
        self.left_below: list[Vec] = []
        acc = (0, 0, 0)
        for level in reversed(levels):
            self.left_below.append(acc)
            acc = _add(acc, _sum((*level.running, *level.starving, *level.waiting)))
        self.left_below.reverse()
        self.whole = [
            _Bound((*lv.running, *lv.starving, *lv.waiting), self.directions, w) for lv in levels
        ]
        self.counts = [0] * len(levels)
        # The objective's flag vectors; undecided flags stay set, so that mid-search the
        # vectors are their own best completion.
        self.kept = [1] * offsets[0]
        self.started = [1] * offsets[1]
        self.chosen: list[int] = []
        self.best: Key | None = None
        self.best_chosen: frozenset[int] = frozenset()

    def seed(self, chosen: frozenset[int], util: int) -> None:
        """Start from a known solution (the heuristic's): only better ones are kept."""
        counts, kept, started = [], [], []
        for level in self.problem.levels:
            kept += [int(i.id in chosen) for i in level.running]
            started += [int(i.id in chosen) for i in level.waiting]
            members = (*level.running, *level.starving, *level.waiting)
            counts.append(sum(1 for i in members if i.id in chosen))
        self.best = (tuple(counts), tuple(kept), util, tuple(started))
        self.best_chosen = chosen

    def run(self) -> Solution:
        for ties, budget in zip((False, True), self.budgets, strict=True):
            self.ties, self.budget, self.nodes = ties, budget, 0
            self._level(0, self.problem.room, 0)
            self.proven = self.proven and self.nodes <= budget
        assert self.best is not None  # the first leaf is always reached, or it was seeded
        return Solution(self.best_chosen, self.best[0], self.best[2], proven=self.proven)

    def _sizes(self, room: Vec) -> list[int]:
        room = (max(room[0], 0), max(room[1], 0), max(room[2], 0))
        return [_dot(d, room) for d in self.directions]

    def _promising(self, li: int, own: _Bound, room: Vec, util: int, left: Vec) -> bool:
        """Whether the subtree may hold a solution better than the incumbent."""
        self.nodes += 1
        best = self.best
        if best is None:
            return True
        if self.nodes > self.budget:
            return False  # out of budget: keep the best found
        best_counts, counts = best[0], self.counts
        for j in range(li):
            if counts[j] != best_counts[j]:
                return counts[j] > best_counts[j]
        sizes = self._sizes(room)
        k = own.count(sizes)
        if counts[li] + k != best_counts[li]:
            return counts[li] + k > best_counts[li]
        gain = own.gain(k)
        for j in range(li + 1, len(counts)):
            k = self.whole[j].count(sizes)
            if k != best_counts[j]:
                return k > best_counts[j]
            gain += self.whole[j].gain(k)
        if not self.ties:
            return False  # the counts cannot improve here
        kept = tuple(self.kept)
        if kept != best[1]:
            return kept > best[1]
        left = _add(left, self.left_below[li])
        w = self.w
        room_gain = (
            w[0] * min(max(room[0], 0), left[0])
            + w[1] * min(max(room[1], 0), left[1])
            + w[2] * min(max(room[2], 0), left[2])
        )
        reachable = util + min(gain, room_gain)
        if reachable != best[2]:
            return reachable > best[2]
        return tuple(self.started) > best[3]

    def _leaf(self, util: int) -> None:
        key = (tuple(self.counts), tuple(self.kept), util, tuple(self.started))
        if self.best is None or (key > self.best if self.ties else key[0] > self.best[0]):
            self.best, self.best_chosen = key, frozenset(self.chosen)

    def _level(self, li: int, room: Vec, util: int) -> None:
        if li == len(self.data):
            self._leaf(util)
            return
        data = self.data[li]
        runs = data.level.running
        if _fits(data.running_total, room):  # all of them stay: the only maximal set
            self._take(li, runs, +1)
            gained = util + _dot(self.w, data.running_total)
            self._starving(li, _minus(room, data.running_total), gained)
            self._take(li, runs, -1)
        else:
            self._running(li, 0, room, util, [])

    def _take(self, li: int, items: Sequence[Item], sign: int) -> None:
        self.counts[li] += sign * len(items)
        if sign > 0:
            self.chosen.extend(i.id for i in items)
        else:
            del self.chosen[len(self.chosen) - len(items) :]

    def _running(self, li: int, i: int, room: Vec, util: int, dropped: list[Item]) -> None:
        data = self.data[li]
        runs = data.level.running
        if i == len(runs):
            # Maximal: every dropped deployment is needed by the levels above.
            if not any(_fits(x.need, room) for x in dropped):
                self._starving(li, room, util)
            return
        if not self._promising(li, data.bound_running[i], room, util, data.left_running[i]):
            return
        item = runs[i]
        if _fits(item.need, room):
            self._take(li, (item,), +1)
            gained = util + _dot(self.w, item.need)
            self._running(li, i + 1, _minus(room, item.need), gained, dropped)
            self._take(li, (item,), -1)
            # Dropping it is allowed only if what follows could fill its room.
            if _fits(item.need, _minus(room, data.runs_after[i])):
                return
        dropped.append(item)
        self.kept[data.keep_at[i]] = 0
        self._running(li, i + 1, room, util, dropped)
        self.kept[data.keep_at[i]] = 1
        dropped.pop()

    def _starving(self, li: int, room: Vec, util: int) -> None:
        data = self.data[li]
        started = []
        for item in data.level.starving:
            if _fits(item.need, room):
                started.append(item)
                room = _minus(room, item.need)
                util += _dot(self.w, item.need)
            else:
                room = _minus(room, _hold(item.need, room, data.lower_running))
        self._take(li, started, +1)
        self._waiting(li, 0, room, util)
        self._take(li, started, -1)

    def _waiting(self, li: int, i: int, room: Vec, util: int) -> None:
        data = self.data[li]
        if i == len(data.waits):
            self._level(li + 1, room, util)
            return
        if not self._promising(li, data.bound_waiting[i], room, util, data.left_waiting[i]):
            return
        item = data.waits[i]
        if _fits(item.need, room):
            self._take(li, (item,), +1)
            self._waiting(li, i + 1, _minus(room, item.need), util + _dot(self.w, item.need))
            self._take(li, (item,), -1)
        end = data.run_end[i]  # skipping it skips the identical ones after it
        for j in range(i, end):
            self.started[data.start_at[j]] = 0
        self._waiting(li, end, room, util)
        for j in range(i, end):
            self.started[data.start_at[j]] = 1


def exact(problem: Problem, budgets: tuple[int, int] = NODE_BUDGETS) -> Solution:
    search = _Exact(problem, budgets)
    start = heuristic(problem)
    search.seed(start.chosen, start.utilization)
    return search.run()


# -- the heuristic ----------------------------------------------------------------------


def heuristic(problem: Problem, budget: int = STEP_BUDGET) -> Solution:
    w = weights(problem.capacity)
    directions = _directions(w)
    room, chosen, counts, util = problem.room, [], [], 0
    steps = [budget]
    lower = _lower_running(problem.levels)
    # Each level's fill is chosen looking one level ahead, through that level's bound.
    ahead = [
        _Bound((*lv.running, *lv.starving, *lv.waiting), directions, w)
        for lv in (*problem.levels[1:], Level(0, (), (), ()))
    ]
    levels = problem.levels
    for li, level in enumerate(levels):
        kept, room = _keep_most(level.running, room)
        started, room = _place_starving(level.starving, room, lower[li])
        picked, room = _best_fill(level.waiting, room, w, ahead[li], directions, steps)
        if li + 1 < len(levels):
            below = levels[li + 1]
            demand = _sum((*below.running, *below.starving, *below.waiting))
            picked, room = _spare(picked, room, level.waiting, demand, steps)
        chosen.extend(i.id for i in (*kept, *started, *picked))
        counts.append(len(kept) + len(started) + len(picked))
        util += sum(_dot(w, i.need) for i in (*kept, *started, *picked))
    return Solution(frozenset(chosen), tuple(counts), util, proven=False)


def _lower_running(levels: Sequence[Level]) -> list[Vec]:
    out, acc = [], (0, 0, 0)
    for level in reversed(levels):
        out.append(acc)
        acc = _add(acc, _sum(level.running))
    return out[::-1]


def _keep_in_order(items: Sequence[Item], room: Vec) -> tuple[list[Item], Vec]:
    """Greedy in order: maximal, and drops the latest-listed first."""
    kept = []
    for item in items:
        if _fits(item.need, room):
            kept.append(item)
            room = _minus(room, item.need)
    return kept, room


def _keep_most(items: Sequence[Item], room: Vec) -> tuple[list[Item], Vec]:
    """A maximal set of running deployments to keep, as many as the greedy finds: in
    start order (guarantee 5's preference) unless smallest first keeps more."""
    in_order = _keep_in_order(items, room)
    smallest = _keep_in_order(sorted(items, key=lambda i: _share(i, room)), room)
    return smallest if len(smallest[0]) > len(in_order[0]) else in_order


def _place_starving(items: Sequence[Item], room: Vec, lower: Vec) -> tuple[list[Item], Vec]:
    started = []
    for item in items:
        if _fits(item.need, room):
            started.append(item)
            room = _minus(room, item.need)
        else:
            room = _minus(room, _hold(item.need, room, lower))
    return started, room


def _share(item: Item, capacity: Vec) -> float:
    """Dominant share: the largest fraction of a dimension's capacity it asks for."""
    return max(n / c if c > 0 else 0.0 for n, c in zip(item.need, capacity, strict=True))


# Weightings of the room's dimensions for the surrogate greedy: each alone, each pair,
# all three, and the lopsided mixes in between (quarters of the simplex).
_MIXES = tuple((a / 4, b / 4, (4 - a - b) / 4) for a in range(5) for b in range(5 - a))


def _best_fill(
    items: Sequence[Item],
    room: Vec,
    w: Vec,
    ahead: _Bound,
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
    candidates = [i for i in items if _fits(i.need, room)]
    if not candidates:
        return [], room
    scale = [1.0 / r if r > 0 else 0.0 for r in room]
    orders = [candidates, sorted(candidates, key=lambda i: _share(i, room))]
    for mix in _MIXES:
        lam = (mix[0] * scale[0], mix[1] * scale[1], mix[2] * scale[2])
        orders.append(
            sorted(
                candidates,
                key=lambda i: lam[0] * i.need[0] + lam[1] * i.need[1] + lam[2] * i.need[2],
            )
        )

    def merit(fill: tuple[list[Item], Vec, list[Item]]) -> tuple[int, int, int]:
        left = fill[1]
        sizes = [_dot(d, (max(left[0], 0), max(left[1], 0), max(left[2], 0))) for d in directions]
        return (len(fill[0]), ahead.count(sizes), _dot(w, left))

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
        trial_room, added = _add(room, out.need), []
        for item in order:
            steps[0] -= 1
            if item.id not in chosen and _fits(item.need, trial_room):
                added.append(item)
                trial_room = _minus(trial_room, item.need)
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
    lam = [demand[d] / (max(room[d], 0) + 1) for d in range(3)]

    def cost(item: Item) -> float:
        return lam[0] * item.need[0] + lam[1] * item.need[1] + lam[2] * item.need[2]

    chosen = {i.id for i in picked}
    spare = sorted((i for i in items if i.id not in chosen), key=cost)
    for out in sorted(picked, key=cost, reverse=True):
        for n, item in enumerate(spare):
            steps[0] -= 1
            if steps[0] <= 0 or cost(item) >= cost(out):
                break
            if _fits(item.need, _add(room, out.need)):
                room = _minus(_add(room, out.need), item.need)
                picked = [item if i is out else i for i in picked]
                spare[n] = out
                spare.sort(key=cost)
                break
    return picked, room


# -- vector helpers -------------------------------------------------------------------


def _add(a: Vec, b: Vec) -> Vec:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _minus(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _dot(w: Vec, x: Vec) -> int:
    return w[0] * x[0] + w[1] * x[1] + w[2] * x[2]
