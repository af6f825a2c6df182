"""Reads for clusters, scoped to the caller's organizations."""

from __future__ import annotations

from django.db.models import Count, Q

from clusters.models import Cluster, ClusterQuerySet
from deployments.models import WAITING, Status


def cluster_list(*, user, organization_id: int | None = None) -> ClusterQuerySet:
    """The caller's clusters, with counts of running and waiting deployments."""
    clusters = Cluster.objects.visible_to(user).annotate(
        running_count=Count("deployments", filter=Q(deployments__status=Status.RUNNING)),
        waiting_count=Count("deployments", filter=Q(deployments__status__in=WAITING)),
    )
    if organization_id is not None:
        clusters = clusters.filter(organization_id=organization_id)
    return clusters.order_by("id")
