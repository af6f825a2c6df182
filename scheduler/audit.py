"""`audit`: check every guarantee of API.md against the database, for all clusters.

A read-only selector: it changes nothing and takes no row locks. It reads one consistent
snapshot (REPEATABLE READ on PostgreSQL) so that concurrent activity cannot make the
database look inconsistent; but a change that committed and whose scheduling pass has
not run *yet* is reported (idle room, a pending deployment whose dependencies are met).
Audit a quiet system, or after `manage.py reschedule --all`, to judge the scheduler.

The placement guarantees (3 priority, 4 no idle room, 6 order, and starvation
reservations) are checked with the planner itself: after a pass, a plan over the same
state must start nothing and preempt nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

import planner
from clusters.models import Cluster
from deployments.conditions import condition_impossible, condition_met
from deployments.locking import DeploymentRow
from deployments.models import HOLDS_ROOM, Dependency, Deployment, DeploymentEvent, Status
from hypervisor.resources import DIMENSIONS, Resources
from scheduler.services import snapshot_of


@dataclass(frozen=True)
class Violation:
    guarantee: str  # "capacity", "counters", "dependencies", "priority", "idle room"
    cluster_id: int
    message: str
    deployment_id: int | None = None

    def __str__(self) -> str:
        where = f"cluster {self.cluster_id}"
        if self.deployment_id is not None:
            where += f", deployment {self.deployment_id}"
        return f"[{self.guarantee}] {where}: {self.message}"


def audit(*, cluster_ids: list[int] | None = None) -> list[Violation]:
    """Every violation found, ordered by cluster; an empty list means all guarantees hold."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # One snapshot for every query below; READ ONLY: an audit never writes.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        clusters = Cluster.objects.order_by("pk")
        if cluster_ids is not None:
            clusters = clusters.filter(pk__in=cluster_ids)
        clusters = list(clusters)
        active = _active_deployments([c.pk for c in clusters])
        now = timezone.now()
        violations: list[Violation] = []
        for cluster in clusters:
            rows = active.get(cluster.pk, [])
            violations += _capacity_violations(cluster, rows)
            violations += _placement_violations(cluster, rows, now=now)
        violations += _dependency_violations([c.pk for c in clusters])
    return sorted(violations, key=lambda v: (v.cluster_id, v.deployment_id or 0, v.guarantee))


def _active_deployments(cluster_ids: list[int]) -> dict[int, list[Deployment]]:
    by_cluster: dict[int, list[Deployment]] = defaultdict(list)
    rows = Deployment.objects.filter(
        cluster_id__in=cluster_ids, status__in=[Status.QUEUED, *HOLDS_ROOM]
    ).order_by("pk")
    for deployment in rows:
        by_cluster[deployment.cluster_id].append(deployment)
    return by_cluster


def _capacity_violations(cluster: Cluster, rows: list[Deployment]) -> list[Violation]:
    """Guarantee 1 (capacity: what holds room fits the capacity), and the allocated counters that the database constraint relies on."""
    used = sum((d.resources for d in rows if d.status in HOLDS_ROOM), start=Resources())
    found = []
    if used != cluster.allocated:
        found.append(
            Violation(
                "counters",
                cluster.pk,
                f"allocated counters {_fmt(cluster.allocated)} differ from the sum of the "
                f"running requests {_fmt(used)}",
            )
        )
    if not used.fits_in(cluster.capacity):
        found.append(
            Violation(
                "capacity",
                cluster.pk,
                f"running deployments use {_fmt(used)}, over the capacity {_fmt(cluster.capacity)}",
            )
        )
    return found


def _placement_violations(cluster: Cluster, rows: list[Deployment], *, now) -> list[Violation]:
    """Guarantees 3 (priority), 4 (no idle room, but for the starvation exception) and
    6 (order): the planner, asked again
    over the current state, must find nothing to do."""
    plan = planner.plan(snapshot_of(cluster, [DeploymentRow.of(d) for d in rows], now=now))
    victims_of = defaultdict(list)
    for preemption in plan.preemptions:
        victims_of[preemption.preemptor_id].append(preemption.victim_id)
    found = []
    for start in plan.starts:
        victims = start.preempted or tuple(victims_of.get(start.deployment_id, ()))
        if victims:
            message = (
                "queued, but could start by preempting lower-priority preemptible "
                f"deployment(s) {', '.join(map(str, victims))}"
            )
            found.append(Violation("priority", cluster.pk, message, start.deployment_id))
        else:
            message = "queued, but fits in the free resources (no reservation holds them)"
            found.append(Violation("idle room", cluster.pk, message, start.deployment_id))
    started = {s.deployment_id for s in plan.starts}
    for preemption in plan.preemptions:
        if preemption.preemptor_id not in started:
            message = f"the planner would preempt it for deployment {preemption.preemptor_id}"
            found.append(Violation("priority", cluster.pk, message, preemption.victim_id))
    return found


def _dependency_violations(cluster_ids: list[int]) -> list[Violation]:
    """Guarantee 2 (a deployment runs only once its dependencies are met), and the dependency states that must have been settled:
    - a deployment that runs or ran had every condition met, and met before it started;
    - a queued one has every condition met;
    - a pending one has some condition still open and none impossible."""
    first_start = (
        DeploymentEvent.objects.filter(
            deployment=OuterRef("dependent_id"), to_status__in=[Status.STARTING, Status.RUNNING]
        )
        .order_by("at")
        .values("at")[:1]
    )
    links = (
        Dependency.objects.filter(dependent__cluster_id__in=cluster_ids)
        .select_related("dependent", "dependency")
        .annotate(first_start=Subquery(first_start))
        .order_by("dependent_id", "dependency_id")
    )
    found: list[Violation] = []
    by_pending: dict[int, list[Dependency]] = defaultdict(list)
    for link in links:
        dependent = link.dependent
        if dependent.status == Status.PENDING:
            by_pending[dependent.pk].append(link)
            continue
        problem = _link_problem(link)
        if problem:
            found.append(Violation("dependencies", dependent.cluster_id, problem, dependent.pk))
    for links_of_one in by_pending.values():
        problem = _pending_problem(links_of_one)
        if problem:
            dependent = links_of_one[0].dependent
            found.append(Violation("dependencies", dependent.cluster_id, problem, dependent.pk))
    return found


def _link_problem(link: Dependency) -> str | None:
    dependent, dependency = link.dependent, link.dependency
    ran = link.first_start is not None or dependent.status in HOLDS_ROOM
    if dependent.status == Status.CANCELLED and not ran:
        return None  # cancelled while waiting: it never ran
    if not condition_met(link.condition, dependency.status):
        return (
            f"{dependent.status}, but its dependency {dependency.pk} is {dependency.status} "
            f"(condition '{link.condition}' not met)"
        )
    started, finished = link.first_start, dependency.finished_at
    if started is not None and finished is not None and started < finished:
        return (
            f"started at {started.isoformat()}, before its dependency "
            f"{dependency.pk} finished at {finished.isoformat()}"
        )
    return None


def _pending_problem(links: list[Dependency]) -> str | None:
    impossible = [
        link for link in links if condition_impossible(link.condition, link.dependency.status)
    ]
    if impossible:
        link = impossible[0]
        return (
            f"pending, but its dependency {link.dependency_id} is {link.dependency.status}: "
            f"condition '{link.condition}' can never be met, so it should be cancelled"
        )
    if all(condition_met(link.condition, link.dependency.status) for link in links):
        return "pending, but all its dependency conditions are met: it should be queued"
    return None


def _fmt(resources: Resources) -> str:
    return ", ".join(
        f"{d.api_field} {value / d.scale:g}" for d, value in zip(DIMENSIONS, resources, strict=True)
    )
