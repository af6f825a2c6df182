"""`manage.py bench_growth`: what an event and a pass cost as the queue grows (issue 14).

    SECRET_KEY=bench DEBUG=false DATABASE_URL=postgres://…/hv_bench \\
        .venv/bin/python manage.py bench_growth --sizes 1000,10000,100000

In-process on PostgreSQL, the embedded shape (no Redis: the decisions run in the
request's process, after its commit, as `make run` does). For each W, a fresh cluster
of 4 CPU (policy `--policy`) runs a 3-CPU non-preemptible deployment at the top
priority; W deployments of 2 CPU wait at priority 0 (they cannot fit, nor preempt):
the one-event-at-a-time workload of `devtools/scripts/eventrun.py`, built by bulk
insert. Then, timed:
- **event**: through Django's test client as the organization's owner (the whole
  request: session, middleware, serializer, the decision): create a 1-CPU
  top-priority deployment (its answer must say `running`), complete it;
- **full pass**: `schedule_cluster` over the settled cluster (it reads all W);
- **planner**: `planner.plan` alone on the same snapshot, in memory.
The table gives p50 wall and CPU per W, and for each the slope of log(cost) against
log(W) fitted over the sizes: 0 is a cost independent of the queue, 1 a linear one.
Rows live in a dedicated organization, deleted at the end.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.test import Client, override_settings
from django.utils import timezone

import planner
from clusters.models import Cluster
from deployments.locking import lock_schedulable
from deployments.models import Deployment, Status
from devtools.bench.benchmarks import Spec, Timings, bench_row, delete_cluster
from hypervisor.resources import Resources
from orgs.models import Membership, Organization, Role
from planner import Policy
from scheduler.services import schedule_cluster, snapshot_of

TOP = 1_000_000
CAPACITY = Resources(4000, 16384, 0)
BLOCKER = Resources(3000, 1024, 0)
WAITER = Resources(2000, 1024, 0)
EVENT = {"cpu": 1, "ram_mb": 512, "gpu": 0}
IMAGE = "registry.example.com/bench/growth:1"


class Command(BaseCommand):
    help = "Event, pass and planner cost at growing queue lengths, with the log-log slope."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sizes", default="1000,10000,100000")
        parser.add_argument("--events", type=int, default=100, help="Timed events per size.")
        parser.add_argument("--passes", type=int, default=10, help="Timed passes per size.")
        parser.add_argument("--policy", choices=[p.value for p in Policy], default="pack")

    def handle(self, *args, sizes: str, events: int, passes: int, policy: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_growth measures PostgreSQL; set DATABASE_URL")
        if settings.USE_RQ:
            raise CommandError("bench_growth measures the embedded shape: unset REDIS_URL")
        widths = [int(w) for w in sizes.split(",")]
        self.stdout.write(
            f"bench_growth: sizes {widths}, {events} events and {passes} passes each, policy "
            f"{policy}; load average {_load_average()}"
        )
        logging.disable(logging.INFO)  # the request log line of every timed request
        rows = []
        limit = max(widths) + events + 10
        with override_settings(
            DEPLOYMENT_MAX_WAITING_PER_CLUSTER=limit, DEPLOYMENT_MAX_WAITING_PER_ORGANIZATION=limit
        ):
            for waiting in widths:
                rows.append(self._measure(waiting, events, passes, Policy(policy)))
        logging.disable(logging.NOTSET)
        self._table(widths, rows)
        self.stdout.write(f"load average {_load_average()}")

    def _measure(self, waiting: int, events: int, passes: int, policy: Policy) -> dict:
        began = time.perf_counter()
        cluster, user = _build(waiting, policy)
        try:
            built = time.perf_counter() - began
            began = time.perf_counter()
            schedule_cluster(cluster_id=cluster.pk)  # the first pass writes every reason
            first = time.perf_counter() - began
            figures = {
                "event": _time_events(cluster, user, events),
                "full pass": _time_passes(cluster, passes),
                "planner": _time_planner(cluster, passes),
            }
            self.stdout.write(
                f"W={waiting}: built in {built:.1f} s, first pass {first * 1000:.0f} ms; "
                + "; ".join(
                    f"{name} p50 {t.p50_ms:.2f} ms (cpu {t.cpu_p50_ms:.2f}) p99 {t.p99_ms:.2f}"
                    for name, t in figures.items()
                )
                + f"; load average {_load_average()}"
            )
            return figures
        finally:
            delete_cluster(cluster)
            user.delete()

    def _table(self, widths: list[int], rows: list[dict]) -> None:
        self.stdout.write("")
        head = (
            "| cost | " + " | ".join(f"W={w:,}" for w in widths) + " | slope (wall) | slope (cpu) |"
        )
        self.stdout.write(head)
        self.stdout.write("|" + "---|" * (len(widths) + 3))
        for name in rows[0]:
            timings = [row[name] for row in rows]
            cells = " | ".join(f"{t.p50_ms:.2f} ms ({t.cpu_p50_ms:.2f})" for t in timings)
            wall = _slope(widths, [t.p50_ms for t in timings])
            cpu = _slope(widths, [t.cpu_p50_ms for t in timings])
            self.stdout.write(f"| {name} p50 (cpu) | {cells} | {wall:.2f} | {cpu:.2f} |")


def _build(waiting: int, policy: Policy) -> tuple[Cluster, object]:
    """The workload, bulk-inserted: a dedicated organization, its owner and cluster."""
    suffix = uuid.uuid4().hex[:12]
    organization = Organization.objects.create(name=f"growth-{suffix}")
    user = get_user_model().objects.create_user(f"growth-{suffix}")
    Membership.objects.create(
        user=user, organization=organization, group=Group.objects.get(name=Role.OWNER.value)
    )
    cluster = Cluster(organization=organization, name="growth", policy=policy.value)
    cluster.set_capacity(CAPACITY)
    cluster.set_allocated(BLOCKER)
    cluster.save()
    now = timezone.now()
    blocker = Spec(BLOCKER, TOP, preemptible=False)
    waiter = Spec(WAITER, 0, preemptible=True)
    rows = [bench_row(cluster, blocker, "blocker", Status.RUNNING, now, now)] + [
        bench_row(
            cluster, waiter, f"wait-{i}", Status.QUEUED, now - timedelta(seconds=waiting - i), None
        )
        for i in range(waiting)
    ]
    Deployment.objects.bulk_create(rows, batch_size=5000)
    return cluster, user


def _time_events(cluster: Cluster, user, events: int) -> Timings:
    client = Client()
    client.force_login(user)
    body = {"cluster": cluster.pk, "image": IMAGE, "resources": EVENT, "priority": TOP}
    timings = Timings()
    for index in range(events + 5):  # the first five warm up
        wall, cpu = time.perf_counter(), time.process_time()
        created = client.post(
            "/api/v1/deployments",
            {**body, "name": f"event-{index}"},
            "application/json",
            secure=True,  # as production serves it: no HTTPS redirect
        )
        if created.status_code != 201 or created.json()["status"] != Status.RUNNING:
            raise CommandError(
                f"the event did not start at once: {created.status_code} {created.content[:300]!r}"
            )
        done = client.post(f"/api/v1/deployments/{created.json()['id']}/complete", secure=True)
        if done.status_code != 200:
            raise CommandError(f"complete failed: {done.content[:300]!r}")
        if index >= 5:
            timings.add(time.perf_counter() - wall, time.process_time() - cpu)
    return timings


def _time_passes(cluster: Cluster, passes: int) -> Timings:
    timings = Timings()
    for _ in range(passes):
        wall, cpu = time.perf_counter(), time.process_time()
        result = schedule_cluster(cluster_id=cluster.pk, cause="bench_growth")
        timings.add(time.perf_counter() - wall, time.process_time() - cpu)
        if result.changed:
            raise CommandError("the settled cluster changed under a no-op pass")
    return timings


def _time_planner(cluster: Cluster, passes: int) -> Timings:
    with transaction.atomic():
        rows = lock_schedulable(cluster.pk)
        snapshot = snapshot_of(Cluster.objects.get(pk=cluster.pk), rows, now=timezone.now())
    timings = Timings()
    for _ in range(passes):
        wall, cpu = time.perf_counter(), time.process_time()
        planner.plan(snapshot)
        timings.add(time.perf_counter() - wall, time.process_time() - cpu)
    return timings


def _slope(widths: list[int], costs: list[float]) -> float:
    """Least-squares slope of log(cost) on log(W)."""
    xs = [math.log(w) for w in widths]
    ys = [math.log(max(c, 1e-9)) for c in costs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0


def _load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])
