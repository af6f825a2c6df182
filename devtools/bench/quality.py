"""How close the policies' placements come to the best the contract allows
(``manage.py bench_quality``).

Seeded random instances (a cluster, running deployments with priorities and
preemptibility, a waiting queue) are planned with ``planner.plan`` under each policy,
and the outcome (what runs after the plan) is compared with the exact optimum of API.md's
``pack`` objective, computed by an independent integer program (scipy's ``milp``, HiGHS).

THE MODEL. One binary ``x[j]`` per deployment: 1 when it runs after the plan.

- Capacity: in every dimension, ``sum(request[j] * x[j]) <= capacity``.
- A running deployment that is not preemptible keeps running: ``x[j] = 1``.
- "Running deployments are never stopped for others of the same or lower priority", with
  guarantee 5 ("lowest priority first, no more than needed"), is encoded level by level.
  Let ``room(p)`` be what is left for priority ``p`` once the final placement of every
  higher priority is in, and the non-preemptible running work of lower priorities (it
  cannot be stopped, so it is always there): the lower *preemptible* work does not
  count, because it is stopped first. The running deployments of priority ``p`` that
  keep running must then be a *maximal* set in ``room(p)``: a running deployment ``v`` of
  priority ``p`` may be stopped only if it does not fit in ``room(p)`` beside the other
  running deployments of priority ``p`` that keep running. Waiting deployments of
  priority ``p`` do not count in that test: they cannot push out running work of their
  own priority. Linearly, for each preemptible running ``v`` of priority ``p`` and each
  dimension ``d`` in which it requests something, a binary ``over[v, d]``:

      sum(over[v, d] for d) >= 1 - x[v]                      (stopped => over somewhere)
      load(p, d) + request[v][d] >= (capacity[d] + 1) * over[v, d]

  where ``load(p, d)`` sums ``request[j][d] * x[j]`` over the deployments of priority
  above ``p`` and the running ones of priority ``p`` (``v`` itself adds nothing when
  stopped), plus the constant requests of the lower non-preemptible running work. Units
  are integers (millicores, MiB, GPUs), so "does not fit" is "exceeds by at least 1".
  The constraint only binds when ``v`` is stopped: a stopped deployment must overflow
  ``room(p)`` if put back. Without this rule, the optimum could stop a large running
  deployment of priority ``p`` to start two small waiting ones of the same priority,
  which the contract forbids; with the weaker rule "a deployment may be stopped only if
  some higher-priority waiting one starts", it still could (any unrelated high start
  would license the swap).

Objective, as in API.md "Policies": lexicographic, solved level by level. For each
priority from the highest down, maximize the number running at that priority with the
counts of the higher priorities fixed at their optimum; then maximize the utilization
(sum over CPU, RAM and GPU of allocated / capacity, leaving out zero-capacity
dimensions). The result is checked exactly in Python (capacity, the rule above) before it
is used, so a numerical slip of the solver cannot pass unnoticed. Queue order, the last
tie-break of ``pack``, is not part of the comparison.

``brute_force`` enumerates every subset with the same rule written as a direct check,
for the tests that keep the integer program honest.

No starvation reservations in these instances (``starvation_after_seconds`` is None):
reservations deliberately trade the objective for fairness.

scipy is imported lazily: only this benchmark needs it (requirements-dev.txt).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from fractions import Fraction

from hypervisor.resources import Resources
from planner import (
    ClusterSnapshot,
    Plan,
    Policy,
    RunningDeployment,
    WaitingDeployment,
    packsearch,
    plan,
)
from planner.engine import Engine
from planner.policies.pack import search_problem

EPOCH = datetime(2026, 1, 1)  # naive on purpose: the planner only compares and subtracts

# -- instances ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instance:
    index: int
    seed: int
    snapshot: ClusterSnapshot


def _capacity(rng: random.Random) -> Resources:
    return Resources(
        cpu=rng.choice((8, 16, 32, 64)) * 1000,
        ram_mb=rng.choice((32, 64, 128, 256)) * 1024,
        gpu=rng.choice((0, 0, 1, 2, 4, 8)),
    )


def _request(rng: random.Random, cap: Resources) -> Resources:
    """A skewed shape: CPU-heavy, RAM-heavy, a GPU job (on a cluster with GPUs, often
    few), balanced, or tiny. Always within the capacity (API.md refuses the rest)."""
    shapes = ["cpu", "ram", "balanced", "tiny"] + (["gpu", "gpu"] if cap.gpu else [])
    shape = rng.choice(shapes)
    lo_cpu, hi_cpu, lo_ram, hi_ram = {
        "cpu": (0.15, 0.5, 0.01, 0.08),
        "ram": (0.01, 0.08, 0.15, 0.5),
        "balanced": (0.05, 0.3, 0.05, 0.3),
        "tiny": (0.002, 0.03, 0.002, 0.03),
        "gpu": (0.05, 0.2, 0.05, 0.2),
    }[shape]
    gpu = rng.randint(1, min(cap.gpu, 2)) if shape == "gpu" else 0
    cpu = max(100, round(cap.cpu * rng.uniform(lo_cpu, hi_cpu) / 100) * 100)
    ram = max(128, round(cap.ram_mb * rng.uniform(lo_ram, hi_ram) / 128) * 128)
    return Resources(cpu=min(cpu, cap.cpu), ram_mb=min(ram, cap.ram_mb), gpu=gpu)


def generate(seed: int, index: int, *, min_size: int = 10, max_size: int = 40) -> Instance:
    """Instance ``index`` of the series ``seed``: reproducible on its own."""
    rng = random.Random(f"bench_quality/{seed}/{index}")
    cap = _capacity(rng)
    size = rng.randint(min_size, max_size)
    priorities = sorted(rng.sample(range(0, 100, 10), rng.randint(1, 5)))
    share_running = rng.uniform(0.2, 0.7)
    running: list[RunningDeployment] = []
    waiting: list[WaitingDeployment] = []
    used = Resources()
    for i in range(1, size + 1):
        request, priority = _request(rng, cap), rng.choice(priorities)
        preemptible = rng.random() < 0.75
        queued_at = EPOCH + timedelta(seconds=i)
        if rng.random() < share_running and (used + request).fits_in(cap):
            used = used + request
            started_at = EPOCH + timedelta(hours=1, seconds=rng.randint(0, 3600))
            running.append(
                RunningDeployment(i, request, priority, preemptible, started_at, queued_at)
            )
        else:
            waiting.append(WaitingDeployment(i, request, priority, preemptible, queued_at))
    snapshot = ClusterSnapshot(
        capacity=cap,
        running=tuple(running),
        waiting=tuple(waiting),
        now=EPOCH + timedelta(hours=3),
    )
    return Instance(index=index, seed=seed, snapshot=snapshot)


# -- outcomes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What runs after a plan, and the objective's value for it."""

    running: frozenset[int]
    counts: tuple[int, ...]  # number running at each priority level, highest first
    utilization: Fraction

    def key(self) -> tuple[tuple[int, ...], Fraction]:
        return self.counts, self.utilization


@dataclass(frozen=True, slots=True)
class _Job:
    id: int
    request: tuple[int, int, int]
    priority: int
    preemptible: bool
    running: bool


def _jobs(snapshot: ClusterSnapshot) -> list[_Job]:
    def vec(r: Resources) -> tuple[int, int, int]:
        return (r.cpu, r.ram_mb, r.gpu)

    jobs = [_Job(r.id, vec(r.resources), r.priority, r.preemptible, True) for r in snapshot.running]
    jobs += [
        _Job(w.id, vec(w.resources), w.priority, w.preemptible, False) for w in snapshot.waiting
    ]
    return sorted(jobs, key=lambda j: j.id)


def _capacity_vec(snapshot: ClusterSnapshot) -> tuple[int, int, int]:
    c = snapshot.capacity
    return (c.cpu, c.ram_mb, c.gpu)


def levels(snapshot: ClusterSnapshot) -> tuple[int, ...]:
    """The priorities present, highest first."""
    return tuple(sorted({j.priority for j in _jobs(snapshot)}, reverse=True))


def outcome(snapshot: ClusterSnapshot, running: Iterable[int]) -> Outcome:
    chosen = frozenset(running)
    jobs = [j for j in _jobs(snapshot) if j.id in chosen]
    counts = tuple(sum(1 for j in jobs if j.priority == p) for p in levels(snapshot))
    cap = _capacity_vec(snapshot)
    utilization = sum(
        (Fraction(sum(j.request[d] for j in jobs), cap[d]) for d in range(3) if cap[d] > 0),
        start=Fraction(0),
    )
    return Outcome(running=chosen, counts=counts, utilization=utilization)


def after_plan(snapshot: ClusterSnapshot, result: Plan) -> frozenset[int]:
    """The deployments running once ``result`` is applied."""
    stopped = {p.victim_id for p in result.preemptions}
    started = {s.deployment_id for s in result.starts}
    return frozenset(r.id for r in snapshot.running if r.id not in stopped) | started


def _fits(jobs: Iterable[_Job], cap: tuple[int, int, int], extra=(0, 0, 0)) -> bool:
    total = list(extra)
    for j in jobs:
        for d in range(3):
            total[d] += j.request[d]
    return all(total[d] <= cap[d] for d in range(3))


def violations(snapshot: ClusterSnapshot, running: frozenset[int]) -> list[str]:
    """Why ``running`` is not a placement the model allows (empty when it is)."""
    jobs, cap = _jobs(snapshot), _capacity_vec(snapshot)
    problems = []
    if not _fits((j for j in jobs if j.id in running), cap):
        problems.append("over capacity")
    for v in jobs:
        if not v.running or v.id in running:
            continue
        if not v.preemptible:
            problems.append(f"non-preemptible {v.id} stopped")
            continue
        room_users = [
            j
            for j in jobs
            if (j.priority > v.priority and j.id in running)
            or (j.priority == v.priority and j.running and j.id in running)
            or (j.priority < v.priority and j.running and not j.preemptible)
        ]
        if _fits(room_users, cap, v.request):
            problems.append(f"{v.id} (priority {v.priority}) stopped though it fits its room")
    return problems


def unnecessary_victims(snapshot: ClusterSnapshot, result: Plan) -> int:
    """Victims that would fit back in the room left free after the plan."""
    running = after_plan(snapshot, result)
    jobs = {j.id: j for j in _jobs(snapshot)}
    cap = _capacity_vec(snapshot)
    final = [jobs[i] for i in running]
    return sum(1 for p in result.preemptions if _fits(final, cap, jobs[p.victim_id].request))


# -- the optimum: an integer program ----------------------------------------------------------


class SolverError(RuntimeError):
    pass


@dataclass
class _Program:
    """The constraints of the model over ``x`` (one per job) and ``over`` indicators."""

    jobs: list[_Job]
    cap: tuple[int, int, int]
    rows: list[dict[int, float]] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    var_lower: list[float] = field(default_factory=list)
    var_upper: list[float] = field(default_factory=list)

    def var(self, lo: float, hi: float) -> int:
        self.var_lower.append(lo)
        self.var_upper.append(hi)
        return len(self.var_lower) - 1

    def row(self, coefficients: dict[int, float], lo: float, hi: float) -> None:
        self.rows.append(coefficients)
        self.lower.append(lo)
        self.upper.append(hi)


def _program(snapshot: ClusterSnapshot) -> _Program:
    inf = float("inf")
    jobs, cap = _jobs(snapshot), _capacity_vec(snapshot)
    prog = _Program(jobs=jobs, cap=cap)
    for j in jobs:
        fixed = j.running and not j.preemptible
        prog.var(1.0 if fixed else 0.0, 1.0)
    for d in range(3):
        prog.row({i: j.request[d] for i, j in enumerate(jobs) if j.request[d]}, -inf, cap[d])
    for iv, v in enumerate(jobs):
        if not (v.running and v.preemptible):
            continue
        load = {
            i: j.request
            for i, j in enumerate(jobs)
            if j.priority > v.priority or (j.priority == v.priority and j.running)
        }
        # The lower non-preemptible running work: always there, a constant.
        base = [
            sum(
                j.request[d]
                for j in jobs
                if j.priority < v.priority and j.running and not j.preemptible
            )
            for d in range(3)
        ]
        overs = []
        for d in range(3):
            if not v.request[d]:
                continue
            over = prog.var(0.0, 1.0)
            overs.append(over)
            # load + base + request >= (cap + 1) * over
            coefficients = {i: r[d] for i, r in load.items() if r[d]}
            coefficients[over] = -(cap[d] + 1)
            prog.row(coefficients, -(base[d] + v.request[d]), inf)
        # sum(over) + x[v] >= 1
        prog.row({**dict.fromkeys(overs, 1.0), iv: 1.0}, 1.0, inf)
    return prog


def _solve(prog: _Program, objective: dict[int, float], extra: list[tuple[dict, float]]):
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = len(prog.var_lower)
    rows = prog.rows + [c for c, _ in extra]
    matrix = np.zeros((len(rows), n))
    for r, coefficients in enumerate(rows):
        for i, value in coefficients.items():
            matrix[r, i] = value
    lower = prog.lower + [lo for _, lo in extra]
    upper = prog.upper + [np.inf for _ in extra]
    c = np.zeros(n)
    for i, value in objective.items():
        c[i] = -value  # milp minimizes
    result = milp(
        c,
        integrality=np.ones(n),
        bounds=Bounds(prog.var_lower, prog.var_upper),
        constraints=[LinearConstraint(matrix, lower, upper)],
        options={"mip_rel_gap": 0.0, "disp": False},
    )
    if result.status != 0 or result.x is None:
        raise SolverError(f"milp: {result.message}")
    return [int(v > 0.5) for v in result.x[: len(prog.jobs)]]  # binaries


def optimum(snapshot: ClusterSnapshot) -> Outcome:
    """The lexicographic optimum of the model, by one integer program per level."""
    prog = _program(snapshot)
    jobs = prog.jobs
    fixed: list[tuple[dict, float]] = []
    x = [1 if j.running else 0 for j in jobs]  # the initial state: a feasible incumbent
    for level in levels(snapshot):
        members = [i for i, j in enumerate(jobs) if j.priority == level]
        count = sum(x[i] for i in members)
        if count < len(members):  # else the incumbent already has them all
            x = _solve(prog, dict.fromkeys(members, 1.0), fixed)
            count = sum(x[i] for i in members)
        fixed.append((dict.fromkeys(members, 1.0), count))
    cap = prog.cap
    utilization = {
        i: sum(j.request[d] / cap[d] for d in range(3) if cap[d] > 0) for i, j in enumerate(jobs)
    }
    x = _solve(prog, utilization, fixed)
    result = outcome(snapshot, (j.id for i, j in enumerate(jobs) if x[i]))
    problems = violations(snapshot, result.running)
    if problems:
        raise SolverError(f"the solver's placement breaks the model: {problems}")
    return result


def brute_force(snapshot: ClusterSnapshot) -> Outcome:
    """The same optimum by trying every subset (tiny instances only)."""
    jobs = _jobs(snapshot)
    best: Outcome | None = None
    for bits in itertools.product((0, 1), repeat=len(jobs)):
        running = frozenset(j.id for j, bit in zip(jobs, bits, strict=True) if bit)
        if violations(snapshot, running):
            continue
        candidate = outcome(snapshot, running)
        if best is None or candidate.key() > best.key():
            best = candidate
    assert best is not None  # the initial state is always allowed
    return best


# -- comparing a policy with the optimum ------------------------------------------------------


@dataclass
class PolicyFigures:
    policy: Policy
    instances: int = 0
    equal: int = 0  # same count at every level as the optimum
    equal_utilization: int = 0  # and the same utilization: the whole objective
    below: int = 0  # lexicographically worse counts
    above: int = 0  # lexicographically better counts: the policy broke the model
    outside_model: int = 0  # outcomes the model forbids (capacity, stopped work)
    count: int = 0
    optimum_count: int = 0
    top: int = 0
    optimum_top: int = 0
    utilization: Fraction = Fraction(0)
    optimum_utilization: Fraction = Fraction(0)
    unnecessary_victims: int = 0
    seconds: list[float] = field(default_factory=list)
    mismatches: list[int] = field(default_factory=list)  # instance indices
    utilization_below: list[int] = field(default_factory=list)  # same counts, less used

    def add(self, instance: Instance, best: Outcome) -> None:
        snapshot = replace(instance.snapshot, policy=self.policy)
        began = time.perf_counter()
        result = plan(snapshot)
        self.seconds.append(time.perf_counter() - began)
        got = outcome(snapshot, after_plan(snapshot, result))
        self.instances += 1
        self.equal += got.counts == best.counts
        self.equal_utilization += got.key() == best.key()
        if got.counts == best.counts and got.utilization < best.utilization:
            self.utilization_below.append(instance.index)
        self.below += got.counts < best.counts
        self.above += got.counts > best.counts
        self.outside_model += bool(violations(snapshot, got.running))
        if got.counts != best.counts:
            self.mismatches.append(instance.index)
        self.count += sum(got.counts)
        self.optimum_count += sum(best.counts)
        self.top += got.counts[0]
        self.optimum_top += best.counts[0]
        self.utilization += got.utilization
        self.optimum_utilization += best.utilization
        self.unnecessary_victims += unnecessary_victims(snapshot, result)


def describe(instance: Instance, best: Outcome) -> str:
    """An instance, its optimum and each policy's outcome, for a person to read."""
    snap = instance.snapshot
    lines = [
        f"instance {instance.index} of seed {instance.seed}: capacity {snap.capacity}, "
        f"levels {levels(snap)}",
    ]
    for j in _jobs(snap):
        state = "running" if j.running else "waiting"
        kind = "preemptible" if j.preemptible else "non-preemptible"
        lines.append(f"  {j.id:3d} {state:7s} p{j.priority:<3d} {kind:15s} {j.request}")
    lines.append(
        f"  optimum: counts {best.counts} util {float(best.utilization):.4f} "
        f"runs {sorted(best.running)}"
    )
    for policy in Policy:
        snapshot = replace(snap, policy=policy)
        got = outcome(snapshot, after_plan(snapshot, plan(snapshot)))
        lines.append(
            f"  {policy.value:7s}: counts {got.counts} util {float(got.utilization):.4f} "
            f"runs {sorted(got.running)}"
        )
    return "\n".join(lines)


# -- how far pack's exact search reaches ---------------------------------------------------


@dataclass
class Reach:
    """The exact search of ``pack`` on instances of one size."""

    size: int
    in_play: list[int] = field(default_factory=list)  # deployments the search decides on
    waiting: list[int] = field(default_factory=list)
    proven: int = 0  # finished within its node budget
    seconds: list[float] = field(default_factory=list)


def exact_reach(seed: int, sizes: Iterable[int], per_size: int) -> list[Reach]:
    """Run ``packsearch.exact`` on ``per_size`` instances of each size and count how
    often it proves its answer within its budget.

    This reaches into the planner (``pack.search_problem``): the search's ``proven``
    flag is not part of ``plan``'s result.
    """
    out = []
    for size in sizes:
        reach = Reach(size=size)
        for index in range(per_size):
            snapshot = generate(seed, index, min_size=size, max_size=size).snapshot
            snapshot = replace(snapshot, policy=Policy.PACK)
            engine = Engine(snapshot)
            if not engine.has_choices():
                continue
            problem, _ = search_problem(engine)
            began = time.perf_counter()
            solution = packsearch.exact(problem)
            reach.seconds.append(time.perf_counter() - began)
            reach.proven += solution.proven
            reach.in_play.append(
                sum(len(level.running) + len(level.waiting) for level in problem.levels)
            )
            reach.waiting.append(len(snapshot.waiting))
        out.append(reach)
    return out
