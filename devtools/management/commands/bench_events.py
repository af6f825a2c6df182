"""`manage.py bench_events`: the cost of a completion that lets one deployment start, at
W waiting that cannot use the room, against a full pass at the same W. In-process on
PostgreSQL, no Redis:

    SECRET_KEY=bench DEBUG=false SCHEDULER_REASONS_SECONDS=0 \\
        DATABASE_URL=postgres://…/hv_bench .venv/bin/python manage.py bench_events \\
        --waiting 1000,10000,100000

A manual cluster of 64 CPU and 256 GiB runs 56 CPU of non-preemptible work and eight
1-CPU non-preemptible deployments (full); W deployments of 4 CPU wait (out of reach:
nothing frees 4 CPU) and ten of 1 CPU wait too. An **event**: `deployment_act` completes
a running 1-CPU deployment (its transaction, then `scheduler.incremental` plans over the
eleven queued rows in reach and the running set, and starts one 1-CPU deployment); then,
untimed, a new 1-CPU deployment is queued by a plain insert. Every event must take the
bounded path (checked). Then a few full passes over the same cluster (`schedule_cluster`,
nothing left to decide, the queue's reasons already written) are timed for comparison.
Figures: wall and CPU p50 per event and per pass, and the log-log slope between sizes.
The reasons refresh is off (`SCHEDULER_REASONS_SECONDS=0`): on a busy cluster it adds one
pass per interval, whatever the number of events.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from deployments.models import Deployment, Status
from deployments.services import Action, deployment_act
from devtools.bench.benchmarks import (
    Spec,
    Timings,
    Workload,
    bench_row,
    create_cluster,
    delete_cluster,
)
from hypervisor.resources import Resources
from planner import Policy
from scheduler.services import PassResult, pass_finished, schedule_cluster

CAPACITY = Resources(cpu=64_000, ram_mb=256 * 1024, gpu=0)
ONE = Spec(Resources(1000, 1024, 0), priority=0, preemptible=False)


class Command(BaseCommand):
    help = "Time a completion that lets one deployment start, against a full pass, per W."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--waiting", default="1000,10000,100000")
        parser.add_argument("--events", type=int, default=200)
        parser.add_argument("--passes", type=int, default=5)
        parser.add_argument("--policy", default="pack", choices=[p.value for p in Policy])

    def handle(self, *args, waiting: str, events: int, passes: int, policy: str, **kw) -> None:
        if connection.vendor != "postgresql" or settings.USE_RQ:
            raise CommandError("bench_events measures PostgreSQL in-process: no REDIS_URL")
        if settings.SCHEDULER_REASONS_SECONDS:
            raise CommandError("set SCHEDULER_REASONS_SECONDS=0 (see the module)")
        paths: list[str] = []

        def record(sender, result: PassResult, **kwargs) -> None:
            paths.append(result.path)

        pass_finished.connect(record, weak=False, dispatch_uid="bench_events")
        actor, _ = get_user_model().objects.get_or_create(username="bench-events")
        rows = []
        for size in (int(w) for w in waiting.split(",")):
            event, full = self._measure(size, Policy(policy), actor, events, passes, paths)
            rows.append((size, event, full))
        pass_finished.disconnect(dispatch_uid="bench_events")
        self._table(rows)

    def _measure(
        self, size: int, policy: Policy, actor, events: int, passes: int, paths: list[str]
    ) -> tuple[Timings, Timings]:
        far = Spec(Resources(4000, 1024, 0), priority=0, preemptible=False)
        load = Workload(
            capacity=CAPACITY,
            running=(Spec(Resources(56_000, 64 * 1024, 0), 0, False), *[ONE] * 8),
            waiting=(*[far] * size, *[ONE] * 10),
        )
        cluster = create_cluster(load, policy=policy)
        try:
            schedule_cluster(cluster_id=cluster.pk)  # writes every reason once
            event = Timings()
            for _ in range(events):
                done = (
                    Deployment.objects.filter(cluster=cluster, status=Status.RUNNING, cpu=1000)
                    .values_list("pk", flat=True)
                    .first()
                )
                paths.clear()
                began, cpu = time.perf_counter(), time.process_time()
                deployment_act(actor=actor, deployment_id=done, action=Action.COMPLETE)
                event.add(time.perf_counter() - began, time.process_time() - cpu)
                if paths != ["bounded"]:
                    raise CommandError(f"an event took {paths or 'no plan'}, not the bounded one")
                bench_row(cluster, ONE, "one", Status.QUEUED, timezone.now(), None).save()
            full = Timings()
            for _ in range(passes):
                began, cpu = time.perf_counter(), time.process_time()
                schedule_cluster(cluster_id=cluster.pk)
                full.add(time.perf_counter() - began, time.process_time() - cpu)
            return event, full
        finally:
            delete_cluster(cluster)

    def _table(self, rows: list[tuple[int, Timings, Timings]]) -> None:
        self.stdout.write(f"load average {_load_average()}")
        self.stdout.write(
            "| W | event wall p50 ms | event CPU p50 ms | full pass wall p50 ms "
            "| full pass CPU p50 ms | slope event / pass (CPU) |"
        )
        self.stdout.write("|---|---|---|---|---|---|")
        previous = None
        for size, event, full in rows:
            slope = ""
            if previous is not None:
                slope = (
                    f"{_slope(previous[0], previous[1].cpu_p50_ms, size, event.cpu_p50_ms):.2f}"
                    f" / {_slope(previous[0], previous[2].cpu_p50_ms, size, full.cpu_p50_ms):.2f}"
                )
            self.stdout.write(
                f"| {size:,} | {event.p50_ms:.1f} | {event.cpu_p50_ms:.1f} | {full.p50_ms:.0f} "
                f"| {full.cpu_p50_ms:.0f} | {slope} |"
            )
            previous = (size, event, full)


def _slope(w1: int, t1: float, w2: int, t2: float) -> float:
    return math.log(t2 / t1) / math.log(w2 / w1)


def _load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])
