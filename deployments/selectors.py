"""Reads for deployments, scoped to the caller's organizations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db.models import Count, Expression, Prefetch, Q, prefetch_related_objects

from clusters.models import Cluster
from deployments.models import (
    HOLDS_ROOM,
    WAITING,
    Dependency,
    Deployment,
    DeploymentEvent,
    DeploymentLog,
    DeploymentQuerySet,
    Status,
)
from deployments.workloads import workload_name
from runtime.backends.base import RuntimeUnavailable
from runtime.gateway import gateway_for

MANUAL = "manual"


def deployment_list(
    *,
    user,
    cluster_id: int | None = None,
    organization_id: int | None = None,
    status: str | None = None,
) -> DeploymentQuerySet:
    """The caller's deployments, with what the API shows of them loaded in bulk."""
    deployments = Deployment.objects.visible_to(user).select_related("cluster", "created_by")
    deployments = deployments.prefetch_related(
        Prefetch(
            "dependency_links",
            queryset=Dependency.objects.select_related("dependency").order_by("dependency_id"),
        )
    )
    if cluster_id is not None:
        deployments = deployments.filter(cluster_id=cluster_id)
    if organization_id is not None:
        deployments = deployments.filter(cluster__organization_id=organization_id)
    if status is not None:
        deployments = deployments.filter(status=status)
    return deployments.order_by("id")


# Deployments per prefetch query: SQLite turns an `IN` of more than 999 ids into a chain
# of ORs, and refuses one deeper than 1,000 ("Expression tree is too large").
PREFETCH_CHUNK = 500


def prefetch_dependency_links(deployments: Sequence[Deployment]) -> None:
    """Load each deployment's dependency links, with the deployments they name, in
    chunks that every engine takes however many deployments there are."""
    for start in range(0, len(deployments), PREFETCH_CHUNK):
        chunk = deployments[start : start + PREFETCH_CHUNK]
        prefetch_related_objects(chunk, "dependency_links__dependency")


def deployment_events(*, deployment: Deployment):
    return (
        DeploymentEvent.objects.filter(deployment=deployment)
        .select_related("actor", "related_deployment")
        .order_by("at", "id")
    )


def deployment_dependents(*, user, deployment: Deployment) -> DeploymentQuerySet:
    """What waits on `deployment` (any status), within the caller's organizations."""
    return deployment_list(user=user).filter(dependency_links__dependency=deployment)


def cluster_counts() -> dict[str, Callable[[], Expression]]:
    """What every read of clusters counts of their deployments (`clusters.selectors`)."""
    return {
        "running_count": lambda: Count("deployments", filter=Q(deployments__status=Status.RUNNING)),
        "waiting_count": lambda: Count("deployments", filter=Q(deployments__status__in=WAITING)),
    }


def active_work(cluster: Cluster) -> int:
    """Deployments of `cluster` that wait or hold room: it may not be deleted then."""
    return cluster.deployments.filter(status__in=[*WAITING, *HOLDS_ROOM]).count()


@dataclass(frozen=True)
class LogView:
    """The last lines of a deployment's output; `source` is the runtime kind."""

    lines: list[str]
    truncated: bool
    source: str


def deployment_logs(*, deployment: Deployment, tail: int) -> LogView:
    """While the deployment holds room its workload exists: read the runtime (one engine
    call, made here, outside any lock). Otherwise the lines kept when it last ended.
    A manual cluster runs nothing, so it has no output."""
    runtime = deployment.cluster.runtime
    if runtime is None:
        return LogView([], False, MANUAL)
    if deployment.status in HOLDS_ROOM:
        try:
            # One line more than asked: whether there was more to show.
            lines = gateway_for(runtime).logs(workload_name(deployment.pk), tail=tail + 1)
            return LogView(lines[-tail:], len(lines) > tail, runtime.kind)
        except RuntimeUnavailable:
            pass  # the runtime's status says why; show what was kept, if anything
    kept = DeploymentLog.objects.filter(deployment=deployment).first()
    if kept is None:
        return LogView([], False, runtime.kind)
    truncated = kept.truncated or len(kept.lines) > tail
    return LogView(kept.lines[-tail:], truncated, kept.source)
