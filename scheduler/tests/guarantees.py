"""API.md's scheduler guarantees, checked against the database independently of the code
under test.

Used by the service, state-machine, dependency and concurrency tests after passes. Each
check re-derives its rule here, from plain column values: no `Resources` arithmetic, no
`fits_in`, no `deployments.conditions`, no planner. A bug in one of those can then not
hide by agreeing with itself. Returns a list of violations (empty when all hold), so a
failing test says what broke.
"""

from __future__ import annotations

from clusters.models import Cluster
from deployments.models import Dependency, Deployment

DIMENSIONS = ("cpu", "ram_mb", "gpu")
Vec = tuple[int, int, int]

# API.md: `succeeded` is met by a completion; `finished` by any end; `failed` by a
# failure or a cancellation. The ends are final, so an end that does not meet a condition
# makes it impossible for good.
MET_BY = {
    "succeeded": frozenset({"completed"}),
    "finished": frozenset({"completed", "failed", "cancelled"}),
    "failed": frozenset({"failed", "cancelled"}),
}
ENDS = frozenset({"completed", "failed", "cancelled"})
# API.md: these hold room (`allocated` is their sum); a pass may preempt the first two.
HOLDING = ("starting", "running", "stopping")
PREEMPTIBLE_STATES = ("starting", "running")


def met(condition: str, status: str) -> bool:
    return status in MET_BY[condition]


def impossible(condition: str, status: str) -> bool:
    return status in ENDS and status not in MET_BY[condition]


def _need(row: dict) -> Vec:
    return (row["cpu"], row["ram_mb"], row["gpu"])


def _sum(rows) -> Vec:
    return (
        sum(r["cpu"] for r in rows),
        sum(r["ram_mb"] for r in rows),
        sum(r["gpu"] for r in rows),
    )


def _fits(need: Vec, room: Vec) -> bool:
    return need[0] <= room[0] and need[1] <= room[1] and need[2] <= room[2]


def _cluster(cluster: Cluster) -> tuple[Vec, Vec]:
    row = Cluster.objects.values(
        *(f"capacity_{d}" for d in DIMENSIONS), *(f"allocated_{d}" for d in DIMENSIONS)
    ).get(pk=cluster.pk)
    capacity = tuple(row[f"capacity_{d}"] for d in DIMENSIONS)
    allocated = tuple(row[f"allocated_{d}"] for d in DIMENSIONS)
    return capacity, allocated


def _rows(cluster: Cluster, *statuses: str) -> list[dict]:
    return list(
        Deployment.objects.filter(cluster_id=cluster.pk, status__in=statuses).values(
            "pk", "status", "priority", "preemptible", *DIMENSIONS
        )
    )


def capacity_violations(cluster: Cluster) -> list[str]:
    """Guarantee 1, and the counters the database constraint relies on."""
    capacity, allocated = _cluster(cluster)
    used = _sum(_rows(cluster, *HOLDING))
    problems = []
    if used != allocated:
        problems.append(f"cluster {cluster.pk}: allocated {allocated} != holding sum {used}")
    if not _fits(used, capacity):
        problems.append(f"cluster {cluster.pk}: running {used} exceeds capacity {capacity}")
    return problems


def placement_violations(cluster: Cluster) -> list[str]:
    """Guarantees 3 and 4 for a cluster without starvation reservations: no queued
    deployment fits in the free room, nor in it plus what strictly lower-priority
    preemptible running work holds."""
    capacity, _ = _cluster(cluster)
    holding = _rows(cluster, *HOLDING)
    used = _sum(holding)
    running = [r for r in holding if r["status"] in PREEMPTIBLE_STATES]
    free = (capacity[0] - used[0], capacity[1] - used[1], capacity[2] - used[2])
    problems = []
    for queued in _rows(cluster, "queued"):
        need = _need(queued)
        if _fits(need, free):
            problems.append(f"idle room: queued {queued['pk']} {need} fits in the free {free}")
            continue
        lower = _sum(r for r in running if r["preemptible"] and r["priority"] < queued["priority"])
        if _fits(need, (free[0] + lower[0], free[1] + lower[1], free[2] + lower[2])):
            problems.append(
                f"priority: queued {queued['pk']} (p{queued['priority']}) could preempt its way in"
            )
    return problems


def dependency_violations(deployments) -> list[str]:
    """Guarantee 2: nothing is queued, runs or finished normally unless every one of its
    dependencies' conditions is met. Only `pending` may wait on unmet ones (and a
    deployment cancelled while pending, which never ran)."""
    rows = {d["pk"]: d for d in deployments.values("pk", "status", "started_at")}
    links = Dependency.objects.filter(dependent_id__in=rows).values_list(
        "dependent_id", "dependency_id", "dependency__status", "condition"
    )
    problems = []
    for dependent_id, dependency_id, dependency_status, condition in links:
        row = rows[dependent_id]
        if row["status"] == "pending":
            continue
        if row["status"] == "cancelled" and row["started_at"] is None:
            continue  # cancelled while waiting: never ran
        if not met(condition, dependency_status):
            problems.append(
                f"deployment {dependent_id} is {row['status']} but dependency "
                f"{dependency_id} is {dependency_status} ({condition})"
            )
    return problems


def all_violations(cluster: Cluster) -> list[str]:
    deployments = Deployment.objects.filter(cluster=cluster)
    return [
        *capacity_violations(cluster),
        *placement_violations(cluster),
        *dependency_violations(deployments),
    ]
