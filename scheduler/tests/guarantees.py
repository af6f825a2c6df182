"""API.md's scheduler guarantees, checked against the database independently of the planner.

Used by the service, state-machine and concurrency tests after passes. Returns a list
of violations (empty when all hold), so a failing test says what broke.
"""

from __future__ import annotations

from clusters.models import Cluster
from deployments.conditions import condition_met
from deployments.models import Deployment, Status
from hypervisor.resources import Resources


def _total(rows) -> Resources:
    return sum((d.resources for d in rows), start=Resources())


def capacity_violations(cluster: Cluster) -> list[str]:
    """Guarantee 1, and the counters the database constraint relies on."""
    cluster.refresh_from_db()
    running = list(cluster.deployments.filter(status=Status.RUNNING))
    used = _total(running)
    problems = []
    if used != cluster.allocated:
        problems.append(
            f"cluster {cluster.pk}: allocated {cluster.allocated} != running sum {used}"
        )
    if not used.fits_in(cluster.capacity):
        problems.append(f"cluster {cluster.pk}: running {used} exceeds capacity {cluster.capacity}")
    return problems


def placement_violations(cluster: Cluster) -> list[str]:
    """Guarantees 3 and 4 for a cluster without starvation reservations."""
    cluster.refresh_from_db()
    rows = list(cluster.deployments.filter(status__in=[Status.RUNNING, Status.QUEUED]))
    running = [d for d in rows if d.status == Status.RUNNING]
    free = cluster.capacity - _total(running)
    problems = []
    for queued in (d for d in rows if d.status == Status.QUEUED):
        if queued.resources.fits_in(free):
            problems.append(f"idle room: queued {queued.pk} fits in the free {free}")
            continue
        lower = [r for r in running if r.preemptible and r.priority < queued.priority]
        if queued.resources.fits_in(free + _total(lower)):
            problems.append(
                f"priority: queued {queued.pk} (p{queued.priority}) could preempt its way in"
            )
    return problems


def dependency_violations(deployments) -> list[str]:
    """Guarantee 2: nothing runs or finished normally unless its dependencies were met."""
    problems = []
    for deployment in deployments:
        if deployment.status in (Status.PENDING, Status.QUEUED):
            continue
        if deployment.status == Status.CANCELLED and deployment.started_at is None:
            continue  # cancelled while waiting: never ran
        for link in deployment.dependency_links.select_related("dependency"):
            if not condition_met(link.condition, link.dependency.status):
                problems.append(
                    f"deployment {deployment.pk} is {deployment.status} but dependency "
                    f"{link.dependency_id} is {link.dependency.status} ({link.condition})"
                )
    return problems


def all_violations(cluster: Cluster) -> list[str]:
    deployments = Deployment.objects.filter(cluster=cluster)
    return [
        *capacity_violations(cluster),
        *placement_violations(cluster),
        *dependency_violations(deployments),
    ]
