"""The ``pack`` search's model: the problem, its solution, and the arithmetic and bounds
that both ways of solving it share. Vectors are plain ``(cpu millicores, ram MiB, gpus)``
triples."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass

Vec = tuple[int, int, int]


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
    # Every starving deployment of the level in order of consideration: those of
    # ``starving``, and the running ones that have been queued longer than the limit. A
    # running one the plan stops goes back to the queue at its original place (API.md,
    # guarantee 5), so it holds room as the waiting ones do.
    reserving: tuple[Item, ...] = ()


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


def weights(capacity: Vec) -> Vec:
    """Integer weights weight with sum(weight[d] * x[d]) proportional to sum(x[d] / capacity[d])
    over the dimensions of non-zero capacity."""
    out = []
    for d in range(3):
        if capacity[d] <= 0:
            out.append(0)
            continue
        weight = 1
        for e in range(3):
            if e != d and capacity[e] > 0:
                weight *= capacity[e]
        out.append(weight)
    return (out[0], out[1], out[2])


def fits(need: Vec, room: Vec) -> bool:
    return need[0] <= room[0] and need[1] <= room[1] and need[2] <= room[2]


def total(items: Sequence[Item]) -> Vec:
    return (
        sum(i.need[0] for i in items),
        sum(i.need[1] for i in items),
        sum(i.need[2] for i in items),
    )


def hold(need: Vec, room: Vec, lower: Vec) -> Vec:
    """What a starving deployment that does not fit holds: its request, clamped to the
    room that is free now, with every lower-priority running deployment still there."""
    return (
        min(need[0], max(0, room[0] - lower[0])),
        min(need[1], max(0, room[1] - lower[1])),
        min(need[2], max(0, room[2] - lower[2])),
    )


def place_starving(
    level: Level, room: Vec, lower: Vec, kept: Collection[int]
) -> tuple[list[Item], Vec]:
    """The level's starving deployments, in order of consideration, once its running ones
    are decided (``kept``: the ids of those that keep running): a waiting one starts if it
    fits, else it holds room (see ``hold``); a running one that is stopped holds room the
    same way; one that keeps running holds nothing. Returns the started ones and the room
    left to the rest of the level and to the levels below."""
    waiting = {item.id for item in level.starving}
    started = []
    for item in level.reserving:
        if item.id in waiting and fits(item.need, room):
            started.append(item)
            room = minus(room, item.need)
        elif item.id in waiting or item.id not in kept:
            room = minus(room, hold(item.need, room, lower))
    return started, room


# -- the exact search -----------------------------------------------------------------


def surrogate_directions(weight: Vec) -> tuple[Vec, ...]:
    """Surrogate constraints for the count bound. Whatever fits a room fits any
    non-negative combination of its dimensions: each dimension alone, and the
    capacity-normalized sums of all three and of each pair (which is what binds when the
    room runs out of two resources at once)."""
    return (
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        weight,
        (weight[0], weight[1], 0),
        (weight[0], 0, weight[2]),
        (0, weight[1], weight[2]),
    )


class Bound:
    """Upper bounds over a fixed set of items.

    ``count``: how many of them fit a room: for each surrogate direction, how many of the
    smallest fit the room's size in that direction; the least over directions.
    ``gain``: the utilization the ``k`` largest of them could add.
    """

    __slots__ = ("prefix", "top")

    def __init__(self, items: Sequence[Item], directions: Sequence[Vec], weight: Vec) -> None:
        self.prefix = [prefix_sums(sorted(dot(d, i.need) for i in items)) for d in directions]
        self.top = prefix_sums(sorted((dot(weight, i.need) for i in items), reverse=True))

    def count(self, sizes: Sequence[int]) -> int:
        """``sizes``: the room measured in each direction (see ``_Exact._sizes``)."""
        return min(map(bisect_right, self.prefix, sizes)) - 1

    def gain(self, k: int) -> int:
        return self.top[min(max(k, 0), len(self.top) - 1)]


def prefix_sums(values: Sequence[int]) -> list[int]:
    sums, acc = [0], 0
    for value in values:
        acc += value
        sums.append(acc)
    return sums


def running_below(levels: Sequence[Level]) -> list[Vec]:
    out, acc = [], (0, 0, 0)
    for level in reversed(levels):
        out.append(acc)
        acc = add(acc, total(level.running))
    return out[::-1]


def dominant_share(item: Item, capacity: Vec) -> float:
    """Dominant share: the largest fraction of a dimension's capacity it asks for."""
    return max(n / c if c > 0 else 0.0 for n, c in zip(item.need, capacity, strict=True))


def add(a: Vec, b: Vec) -> Vec:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def minus(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def dot(weight: Vec, x: Vec) -> int:
    return weight[0] * x[0] + weight[1] * x[1] + weight[2] * x[2]
