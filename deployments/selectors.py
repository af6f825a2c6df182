"""Reads for deployments, scoped to the caller's organizations."""

from __future__ import annotations

from django.db.models import Prefetch

from deployments.models import Dependency, Deployment, DeploymentEvent, DeploymentQuerySet


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


def deployment_events(*, deployment: Deployment):
    return (
        DeploymentEvent.objects.filter(deployment=deployment)
        .select_related("actor", "related_deployment")
        .order_by("at", "id")
    )


def deployment_dependents(*, user, deployment: Deployment) -> DeploymentQuerySet:
    """What waits on `deployment` (any status), within the caller's organizations."""
    return deployment_list(user=user).filter(dependency_links__dependency=deployment)
