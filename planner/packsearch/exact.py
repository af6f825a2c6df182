"""The exact search behind ``pack``: depth-first branch and bound (see the package's
docstring for the model, the objective and the bounds)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from planner.packsearch.heuristic import heuristic
from planner.packsearch.problem import (
    Bound,
    Item,
    Key,
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

# Search nodes each phase of the exact search may visit (a few microseconds each):
# proving the counts, then settling the tie-breaks.
NODE_BUDGETS = (8_000, 4_000)


class LevelData:
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
        weight = directions[3]
        self.level = level
        self.running_total = total(level.running)
        self.lower_running = lower_running  # all preemptible running below this level
        runs = level.running
        self.keep_at = [offsets[0] + i for i in range(len(runs))]  # flag positions
        ranked = sorted(
            range(len(level.waiting)),
            key=lambda q: (dominant_share(level.waiting[q], capacity), level.waiting[q].need, q),
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
            Bound((*runs[i:], *rest), directions, weight) for i in range(len(runs) + 1)
        ]
        self.bound_waiting = [
            Bound(self.waits[i:], directions, weight) for i in range(len(self.waits) + 1)
        ]
        self.left_running = [total((*runs[i:], *rest)) for i in range(len(runs) + 1)]
        self.left_waiting = [total(self.waits[i:]) for i in range(len(self.waits) + 1)]
        self.runs_after = [total(runs[i + 1 :]) for i in range(len(runs))]


class _Exact:
    """Two depth-first searches over the same tree, each with its node budget.

    First the counts: a subtree is cut unless its bound beats the incumbent's counts,
    which settles the main objective quickly. Then the tie-breaks (victims' order,
    utilization, queue order) among solutions with those counts, starting from the best
    found: their bounds are weaker, and they matter less.
    """

    def __init__(self, problem: Problem, budgets: tuple[int, int]) -> None:
        self.problem = problem
        self.weight = weight = weights(problem.capacity)
        self.directions = surrogate_directions(weight)
        self.budgets = budgets
        self.budget, self.nodes, self.ties = budgets[0], 0, False
        self.proven = True
        levels = problem.levels
        lower_running = running_below(levels)
        self.data: list[LevelData] = []
        offsets = (0, 0)
        for level_index, level in enumerate(levels):
            data = LevelData(
                level, lower_running[level_index], self.directions, problem.capacity, offsets
            )
            self.data.append(data)
            offsets = (offsets[0] + len(level.running), offsets[1] + len(level.waiting))
        # Everything at the levels below each level: for the utilization bound.
        self.left_below: list[Vec] = []
        acc = (0, 0, 0)
        for level in reversed(levels):
            self.left_below.append(acc)
            acc = add(acc, total((*level.running, *level.starving, *level.waiting)))
        self.left_below.reverse()
        self.whole = [
            Bound((*level.running, *level.starving, *level.waiting), self.directions, weight)
            for level in levels
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
        return [dot(d, room) for d in self.directions]

    def _promising(self, level_index: int, own: Bound, room: Vec, util: int, left: Vec) -> bool:
        """Whether the subtree may hold a solution better than the incumbent."""
        self.nodes += 1
        best = self.best
        if best is None:
            return True
        if self.nodes > self.budget:
            return False  # out of budget: keep the best found
        best_counts, counts = best[0], self.counts
        for j in range(level_index):
            if counts[j] != best_counts[j]:
                return counts[j] > best_counts[j]
        sizes = self._sizes(room)
        k = own.count(sizes)
        if counts[level_index] + k != best_counts[level_index]:
            return counts[level_index] + k > best_counts[level_index]
        gain = own.gain(k)
        for j in range(level_index + 1, len(counts)):
            k = self.whole[j].count(sizes)
            if k != best_counts[j]:
                return k > best_counts[j]
            gain += self.whole[j].gain(k)
        if not self.ties:
            return False  # the counts cannot improve here
        kept = tuple(self.kept)
        if kept != best[1]:
            return kept > best[1]
        left = add(left, self.left_below[level_index])
        weight = self.weight
        room_gain = (
            weight[0] * min(max(room[0], 0), left[0])
            + weight[1] * min(max(room[1], 0), left[1])
            + weight[2] * min(max(room[2], 0), left[2])
        )
        reachable = util + min(gain, room_gain)
        if reachable != best[2]:
            return reachable > best[2]
        return tuple(self.started) > best[3]

    def _leaf(self, util: int) -> None:
        key = (tuple(self.counts), tuple(self.kept), util, tuple(self.started))
        if self.best is None or (key > self.best if self.ties else key[0] > self.best[0]):
            self.best, self.best_chosen = key, frozenset(self.chosen)

    def _level(self, level_index: int, room: Vec, util: int) -> None:
        if level_index == len(self.data):
            self._leaf(util)
            return
        data = self.data[level_index]
        runs = data.level.running
        if fits(data.running_total, room):  # all of them stay: the only maximal set
            self._take(level_index, runs, +1)
            gained = util + dot(self.weight, data.running_total)
            self._starving(level_index, minus(room, data.running_total), gained, ())
            self._take(level_index, runs, -1)
        else:
            self._running(level_index, 0, room, util, [])

    def _take(self, level_index: int, items: Sequence[Item], sign: int) -> None:
        self.counts[level_index] += sign * len(items)
        if sign > 0:
            self.chosen.extend(i.id for i in items)
        else:
            del self.chosen[len(self.chosen) - len(items) :]

    def _running(self, level_index: int, i: int, room: Vec, util: int, dropped: list[Item]) -> None:
        data = self.data[level_index]
        runs = data.level.running
        if i == len(runs):
            # Maximal: every dropped deployment is needed by the levels above.
            if not any(fits(x.need, room) for x in dropped):
                self._starving(level_index, room, util, {x.id for x in dropped})
            return
        if not self._promising(
            level_index, data.bound_running[i], room, util, data.left_running[i]
        ):
            return
        item = runs[i]
        if fits(item.need, room):
            self._take(level_index, (item,), +1)
            gained = util + dot(self.weight, item.need)
            self._running(level_index, i + 1, minus(room, item.need), gained, dropped)
            self._take(level_index, (item,), -1)
            # Dropping it is allowed only if what follows could fill its room.
            if fits(item.need, minus(room, data.runs_after[i])):
                return
        dropped.append(item)
        self.kept[data.keep_at[i]] = 0
        self._running(level_index, i + 1, room, util, dropped)
        self.kept[data.keep_at[i]] = 1
        dropped.pop()

    def _starving(self, level_index: int, room: Vec, util: int, dropped: Collection[int]) -> None:
        """``dropped``: the ids of the level's running deployments this branch stops."""
        data = self.data[level_index]
        level = data.level
        kept = [i.id for i in level.running if i.id not in dropped]
        started, room = place_starving(level, room, data.lower_running, kept)
        util += sum(dot(self.weight, item.need) for item in started)
        self._take(level_index, started, +1)
        self._waiting(level_index, 0, room, util)
        self._take(level_index, started, -1)

    def _waiting(self, level_index: int, i: int, room: Vec, util: int) -> None:
        data = self.data[level_index]
        if i == len(data.waits):
            self._level(level_index + 1, room, util)
            return
        if not self._promising(
            level_index, data.bound_waiting[i], room, util, data.left_waiting[i]
        ):
            return
        item = data.waits[i]
        if fits(item.need, room):
            self._take(level_index, (item,), +1)
            self._waiting(
                level_index, i + 1, minus(room, item.need), util + dot(self.weight, item.need)
            )
            self._take(level_index, (item,), -1)
        end = data.run_end[i]  # skipping it skips the identical ones after it
        for j in range(i, end):
            self.started[data.start_at[j]] = 0
        self._waiting(level_index, end, room, util)
        for j in range(i, end):
            self.started[data.start_at[j]] = 1


def exact(problem: Problem, budgets: tuple[int, int] = NODE_BUDGETS) -> Solution:
    search = _Exact(problem, budgets)
    start = heuristic(problem)
    search.seed(start.chosen, start.utilization)
    return search.run()
