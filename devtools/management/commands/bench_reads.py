"""`manage.py bench_reads`: the queue's reads at a long queue, in-process on PostgreSQL.

    SECRET_KEY=bench DEBUG=false DATABASE_URL=postgres://…/hv_bench \\
        .venv/bin/python manage.py bench_reads --waiting 10000

Builds the bench workload (a full cluster of 128 CPU with 80 running and N waiting, the
one `bench_scheduler` uses), runs the pass that explains the queue, then times, through
Django's test client logged in as the organization's owner (the whole request: session,
middleware, view, template or serializer): a page of the queue endpoint at its head and
at its tail, the dashboard, its live fragment, and the page of the last deployment in
the queue. The target (issue 14): each under 100 ms at 10,000 waiting. Its rows live in
a dedicated organization, deleted at the end.
"""

from __future__ import annotations

import logging
import os
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.urls import reverse

from deployments.models import Deployment, Status
from devtools.bench.benchmarks import Timings, create_cluster, delete_cluster, workload
from orgs.models import Membership, Role
from planner import Policy
from scheduler.selectors import QUEUED_ORDER
from scheduler.services import schedule_cluster

TARGET_MS = 100.0


class Command(BaseCommand):
    help = "Time the queue endpoint, the dashboard and a deployment's page at a long queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--waiting", type=int, default=10_000)
        parser.add_argument("--requests", type=int, default=30, help="Timed requests per read.")
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, waiting: int, requests: int, seed: int, **options) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("bench_reads measures PostgreSQL; set DATABASE_URL")
        cluster = create_cluster(workload(waiting=waiting, seed=seed), policy=Policy.FIFO)
        user = get_user_model().objects.create_user(f"bench-{cluster.organization_id}")
        try:
            owners = Group.objects.get(name=Role.OWNER.value)
            Membership.objects.create(user=user, organization=cluster.organization, group=owners)
            began = time.perf_counter()
            schedule_cluster(cluster_id=cluster.pk)
            self.stdout.write(
                f"{waiting} waiting; the first pass (writes every reason) took "
                f"{time.perf_counter() - began:.2f} s; load average {_load_average()}"
            )
            logging.disable(logging.INFO)  # the request log line of every timed request
            self._time_reads(cluster, user, requests)
            logging.disable(logging.NOTSET)
            self.stdout.write(f"load average {_load_average()}")
        finally:
            delete_cluster(cluster)
            user.delete()

    def _time_reads(self, cluster, user, requests: int) -> None:
        client = Client()
        client.force_login(user)
        last = (
            Deployment.objects.filter(cluster=cluster, status=Status.QUEUED)
            .order_by(*reversed_order())
            .first()
        )
        queue = f"/api/v1/clusters/{cluster.pk}/queue"
        total = Deployment.objects.filter(cluster=cluster, status=Status.QUEUED).count()
        reads = {
            "GET …/queue (head, 500)": queue,
            "GET …/queue?offset=tail&limit=500": f"{queue}?offset={max(0, total - 500)}&limit=500",
            "dashboard": reverse("web:dashboard", args=[cluster.organization_id]),
            "dashboard live fragment": reverse(
                "web:dashboard-live", args=[cluster.organization_id]
            ),
            "deployment page (last queued)": reverse("web:deployment", args=[last.pk]),
        }
        self.stdout.write(
            f"{'read':36} {'p50 ms':>8} {'p99 ms':>8} {'CPU p50':>8} {'KB':>7}  target"
        )
        for name, url in reads.items():
            timings, size = _time(client, url, requests)
            verdict = "met" if timings.p50_ms < TARGET_MS else "NOT met"
            self.stdout.write(
                f"{name:36} {timings.p50_ms:8.1f} {timings.p99_ms:8.1f} "
                f"{timings.cpu_p50_ms:8.1f} {size / 1024:7.0f}  {verdict} (< {TARGET_MS:.0f} ms)"
            )


def reversed_order() -> list[str]:
    """The queue's order, backwards: its last deployment first."""
    return [key[1:] if key.startswith("-") else f"-{key}" for key in QUEUED_ORDER]


def _time(client: Client, url: str, requests: int) -> tuple[Timings, int]:
    timings = Timings()
    size = 0
    client.get(url, secure=True)  # warm: templates, serializers, the session (HTTPS: as served)
    for _ in range(requests):
        began, cpu = time.perf_counter(), time.process_time()
        answer = client.get(url, secure=True)
        timings.add(time.perf_counter() - began, time.process_time() - cpu)
        if answer.status_code != 200:
            raise CommandError(f"{url} answered {answer.status_code}")
        size = len(answer.content)
    return timings, size


def _load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())
