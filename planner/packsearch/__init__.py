"""The ``pack`` policy's search: which deployments should run.

Pure, on plain ``(cpu millicores, ram MiB, gpu)`` triples; ``planner.policies.pack`` builds
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
  still there) and that room is closed to the rest of this level and all lower ones. A
  running deployment the choice stops, queued longer than the limit, is one of them: it
  goes back to the queue at its original place and holds room the same way (so stopping
  it may start fewer below than stopping another);
- then any subset of its other waiting deployments that fits.

Objective, compared lexicographically:
1. the number running at each level, from the highest down;
2. guarantee 5's order (minimal preemption: lowest priority first, among equals the most
   recently started first) among the running deployments stopped: as a vector of "kept"
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
``planner.policies.pack`` realizes the choice and runs the fifo fixpoint after it, so the
guarantees hold whatever the search returns.
"""

from __future__ import annotations

from planner.packsearch.exact import exact
from planner.packsearch.heuristic import heuristic
from planner.packsearch.problem import Item, Level, Problem, Solution

__all__ = ["EXACT_LIMIT", "Item", "Level", "Problem", "Solution", "exact", "heuristic", "solve"]

# Beyond this many deployments in play, the heuristic; below, the exact search.
EXACT_LIMIT = 64


def solve(problem: Problem) -> Solution:
    size = sum(
        len(level.running) + len(level.starving) + len(level.waiting) for level in problem.levels
    )
    if size <= EXACT_LIMIT:
        return exact(problem)
    return heuristic(problem)
