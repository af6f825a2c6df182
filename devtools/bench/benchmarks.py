"""Throughput and latency of the scheduling pass (``manage.py bench_scheduler``).

Two measurements over the same seeded workload: one cluster with a realistic running set
(``RUNNING`` deployments of mixed priorities, some non-preemptible) and N waiting ones.

- The full pass on PostgreSQL: ``schedule_cluster`` (lock the cluster, lock and read its
  queued and running rows, plan, apply with bulk writes, commit), in two situations:
  *steady* (nothing changed since the last pass: the idempotent no-op pass) and *churn*
  (between passes, untimed, a few running deployments complete and a few arrive, some
  at a priority that preempts, so that every pass makes decisions).
- The pure planner alone (``planner.plan``), in memory, for each policy, on the same
  three kinds of snapshot: the first plan of the unsettled workload, the steady state
  and churn.

Rows live in a dedicated organization and cluster, bulk-created and deleted afterwards.
Churn is written with plain UPDATEs and INSERTs (no services, no triggers), so that the
only scheduling work measured is the pass under test.
"""

from __future__ import annotations

import cProfile
import io
import itertools
import math
import pstats
import random
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

import planner
from clusters.models import Cluster
from deployments.models import Deployment, DeploymentEvent, Status
from hypervisor.resources import Resources
from orgs.models import Organization
from planner import ClusterSnapshot, Plan, Policy, RunningDeployment, WaitingDeployment
from scheduler.services import schedule_cluster

CAPACITY = Resources(cpu=128_000, ram_mb=512 * 1024, gpu=8)  # 128 cores, 512 GiB, 8 GPUs
RUNNING = 80  # the running set aimed at; it fills the cluster
TOP = 1000  # the priority of urgent arrivals: they preempt
IMAGE = "registry.example.com/bench/job:1"


@dataclass(frozen=True, slots=True)
class Spec:
    """One deployment of the workload, before it has an id."""

    resources: Resources
    priority: int
    preemptible: bool


@dataclass(frozen=True, slots=True)
class Workload:
    capacity: Resources
    running: tuple[Spec, ...]
    waiting: tuple[Spec, ...]


def _spec(rng: random.Random, priorities: tuple[int, ...], weights: tuple[float, ...]) -> Spec:
    return Spec(
        resources=Resources(
            cpu=rng.choice((250, 500, 1000, 1000, 2000, 2000, 4000)),
            ram_mb=rng.choice((512, 1024, 2048, 4096, 8192)),
            gpu=1 if rng.random() < 0.05 else 0,
        ),
        priority=rng.choices(priorities, weights)[0],
        preemptible=rng.random() < 0.7,
    )


def arrival_spec(rng: random.Random) -> Spec:
    """A deployment arriving during churn: one in five urgent (it preempts)."""
    if rng.random() < 0.2:
        return replace(_spec(rng, (TOP,), (1.0,)), preemptible=False)
    return _spec(rng, (0, 10), (0.6, 0.4))


def workload(*, waiting: int, seed: int, running: int = RUNNING) -> Workload:
    """A full cluster: ``running`` deployments of mixed priorities (0 to 1000, 70%
    preemptible) and ``waiting`` ones at priorities 0 and 10, so most of them wait."""
    rng = random.Random(seed)
    started: list[Spec] = []
    used = Resources()
    for _ in range(running * 20):
        if len(started) == running:
            break
        spec = _spec(rng, (0, 10, 100, TOP), (0.3, 0.3, 0.3, 0.1))
        if (used + spec.resources).fits_in(CAPACITY):
            started.append(spec)
            used = used + spec.resources
    queue = tuple(_spec(rng, (0, 10), (0.6, 0.4)) for _ in range(waiting))
    return Workload(capacity=CAPACITY, running=tuple(started), waiting=queue)


# -- statistics --------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Timings:
    """Durations of repeated runs (wall clock, and this process's CPU time, which other
    processes on a busy machine disturb far less), and the decisions they made."""

    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    decisions: int = 0

    def add(self, seconds: float, cpu_seconds: float, decisions: int = 0) -> None:
        self.seconds.append(seconds)
        self.cpu_seconds.append(cpu_seconds)
        self.decisions += decisions

    @property
    def p50_ms(self) -> float:
        return percentile(self.seconds, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.seconds, 99) * 1000

    @property
    def cpu_p50_ms(self) -> float:
        return percentile(self.cpu_seconds, 50) * 1000

    @property
    def cpu_p99_ms(self) -> float:
        return percentile(self.cpu_seconds, 99) * 1000

    @property
    def per_second(self) -> float:
        """Runs per second, back to back."""
        return len(self.seconds) / sum(self.seconds)

    @property
    def decisions_per_second(self) -> float:
        return self.decisions / sum(self.seconds)


class _Clock:
    """Wall and CPU time of a block."""

    def __enter__(self) -> _Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


# -- the pure planner, in memory -----------------------------------------------------------


def _snapshot(load: Workload, *, now: datetime, policy: Policy) -> ClusterSnapshot:
    ids = itertools.count(1)
    running = tuple(
        RunningDeployment(
            id=next(ids),
            resources=s.resources,
            priority=s.priority,
            preemptible=s.preemptible,
            started_at=now - timedelta(minutes=30, seconds=-i),
            queued_at=now - timedelta(hours=2, seconds=-i),
        )
        for i, s in enumerate(load.running)
    )
    waiting = tuple(
        WaitingDeployment(
            id=next(ids),
            resources=s.resources,
            priority=s.priority,
            preemptible=s.preemptible,
            queued_at=now - timedelta(hours=1) + timedelta(milliseconds=i),
        )
        for i, s in enumerate(load.waiting)
    )
    return ClusterSnapshot(
        capacity=load.capacity, running=running, waiting=waiting, now=now, policy=policy
    )


def apply_in_memory(snapshot: ClusterSnapshot, plan: Plan) -> ClusterSnapshot:
    """The snapshot the next pass would see after ``plan`` (what the service writes)."""
    started = {s.deployment_id for s in plan.starts}
    preempted = {p.victim_id for p in plan.preemptions}
    running = [r for r in snapshot.running if r.id not in preempted]
    running += [
        RunningDeployment(
            id=w.id,
            resources=w.resources,
            priority=w.priority,
            preemptible=w.preemptible,
            started_at=snapshot.now,
            queued_at=w.queued_at,
        )
        for w in snapshot.waiting
        if w.id in started
    ]
    waiting = [w for w in snapshot.waiting if w.id not in started]
    waiting += [
        WaitingDeployment(
            id=r.id,
            resources=r.resources,
            priority=r.priority,
            preemptible=r.preemptible,
            queued_at=r.queued_at or r.started_at,
        )
        for r in snapshot.running
        if r.id in preempted
    ]
    return replace(snapshot, running=tuple(running), waiting=tuple(waiting))


def churn_in_memory(
    snapshot: ClusterSnapshot, rng: random.Random, *, completions: int, arrivals: int, next_id: int
) -> ClusterSnapshot:
    """``completions`` running deployments finish and ``arrivals`` new ones queue, a
    second later."""
    now = snapshot.now + timedelta(seconds=1)
    done = set(
        rng.sample([r.id for r in snapshot.running], min(completions, len(snapshot.running)))
    )
    new = tuple(
        WaitingDeployment(
            id=next_id + i,
            resources=s.resources,
            priority=s.priority,
            preemptible=s.preemptible,
            queued_at=now,
        )
        for i, s in enumerate(arrival_spec(rng) for _ in range(arrivals))
    )
    running = tuple(r for r in snapshot.running if r.id not in done)
    return replace(snapshot, running=running, waiting=snapshot.waiting + new, now=now)


def _timed_plan(snapshot: ClusterSnapshot, timings: Timings) -> Plan:
    with _Clock() as clock:
        result = planner.plan(snapshot)
    timings.add(clock.wall, clock.cpu, len(result.starts) + len(result.preemptions))
    return result


def bench_planner(
    load: Workload, *, policy: Policy, passes: int, seed: int, churns: list[int]
) -> dict[str, Timings]:
    """Plan time of the first (unsettled) and steady snapshots, and under each churn."""
    first = _snapshot(load, now=timezone.now(), policy=policy)
    results = {"first": Timings(), "steady": Timings()}
    for _ in range(passes):
        plan = _timed_plan(first, results["first"])
    settled = apply_in_memory(first, plan)
    for _ in range(passes):
        _timed_plan(settled, results["steady"])
    for churn in churns:
        rng = random.Random(seed)
        timings = results[f"churn {churn}"] = Timings()
        state, next_id = settled, len(load.running) + len(load.waiting) + 1
        for _ in range(passes):
            state = churn_in_memory(state, rng, completions=churn, arrivals=churn, next_id=next_id)
            next_id += churn
            state = apply_in_memory(state, _timed_plan(state, timings))
    return results


# -- the full pass, on the database ----------------------------------------------------------


def create_cluster(load: Workload, *, policy: Policy) -> Cluster:
    """A dedicated organization and cluster holding the workload's rows."""
    now = timezone.now()
    organization = Organization.objects.create(name=f"bench-{uuid.uuid4().hex[:12]}")
    used = sum((s.resources for s in load.running), start=Resources())
    cluster = Cluster(organization=organization, name="bench", policy=policy.value)
    cluster.set_capacity(load.capacity)
    cluster.set_allocated(used)
    cluster.save()
    rows = [
        bench_row(cluster, s, f"run-{i}", Status.RUNNING, now - timedelta(hours=2, seconds=-i), now)
        for i, s in enumerate(load.running)
    ]
    rows += [
        bench_row(
            cluster, s, f"wait-{i}", Status.QUEUED, now - timedelta(hours=1, seconds=-i), None
        )
        for i, s in enumerate(load.waiting)
    ]
    Deployment.objects.bulk_create(rows, batch_size=2000)
    return cluster


def bench_row(
    cluster: Cluster,
    spec: Spec,
    name: str,
    status: Status,
    queued_at: datetime,
    started_at: datetime | None,
) -> Deployment:
    """An unsaved deployment of a bench workload (for bulk_create)."""
    return Deployment(
        cluster=cluster,
        name=name,
        image=IMAGE,
        cpu=spec.resources.cpu,
        ram_mb=spec.resources.ram_mb,
        gpu=spec.resources.gpu,
        priority=spec.priority,
        preemptible=spec.preemptible,
        status=status,
        queued_at=queued_at,
        started_at=started_at,
    )


def delete_cluster(cluster: Cluster) -> None:
    """Remove everything ``create_cluster`` and the passes wrote."""
    with transaction.atomic():
        DeploymentEvent.objects.filter(deployment__cluster=cluster).delete()
        Deployment.objects.filter(cluster=cluster).delete()
        organization = cluster.organization
        cluster.delete()
        organization.delete()


def churn_rows(cluster: Cluster, rng: random.Random, *, completions: int, arrivals: int) -> None:
    """Between passes: complete ``completions`` running deployments, queue ``arrivals``."""
    now = timezone.now()
    running = list(
        Deployment.objects.filter(cluster=cluster, status=Status.RUNNING).values_list(
            "pk", flat=True
        )
    )
    done = rng.sample(running, min(completions, len(running)))
    Deployment.objects.filter(pk__in=done).update(
        status=Status.COMPLETED, finished_at=now, updated_at=now
    )
    new = [
        bench_row(
            cluster, arrival_spec(rng), f"arrival-{uuid.uuid4().hex[:8]}", Status.QUEUED, now, None
        )
        for _ in range(arrivals)
    ]
    Deployment.objects.bulk_create(new)


def _timed_pass(cluster: Cluster, timings: Timings) -> int:
    """One pass, timed into ``timings``; the number of decisions it made."""
    with _Clock() as clock:
        result = schedule_cluster(cluster_id=cluster.pk, cause="bench_scheduler")
    decisions = len(result.started) + len(result.preempted)
    timings.add(clock.wall, clock.cpu, decisions)
    return decisions


@dataclass
class PassFigures:
    settle_seconds: float  # the first pass: it starts what fits and writes every reason
    settle_decisions: int
    steady: Timings
    churn: dict[int, Timings]  # by churn size
    profile: str = ""


def bench_passes(
    load: Workload,
    *,
    policy: Policy,
    passes: int,
    seed: int,
    churns: list[int],
    profile: bool = False,
) -> PassFigures:
    """Run the passes against a fresh bench cluster, then delete it. ``profile``
    profiles the churn passes."""
    rng = random.Random(seed)
    cluster = create_cluster(load, policy=policy)
    try:
        first = Timings()
        _timed_pass(cluster, first)
        for _ in range(5):  # until settled: a pass over it decides nothing
            if not _timed_pass(cluster, Timings()):
                break
        steady = Timings()
        for _ in range(passes):
            _timed_pass(cluster, steady)
        churned: dict[int, Timings] = {}
        profiler = cProfile.Profile() if profile else None
        for churn in churns:
            timings = churned[churn] = Timings()
            for _ in range(passes):
                churn_rows(cluster, rng, completions=churn, arrivals=churn)
                if profiler:
                    profiler.enable()
                _timed_pass(cluster, timings)
                if profiler:
                    profiler.disable()
        return PassFigures(
            settle_seconds=first.seconds[0],
            settle_decisions=first.decisions,
            steady=steady,
            churn=churned,
            profile=_profile_text(profiler) if profiler else "",
        )
    finally:
        delete_cluster(cluster)


def _profile_text(profiler: cProfile.Profile, *, lines: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(lines)
    return out.getvalue()
