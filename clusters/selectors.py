"""Reads for clusters, scoped to the caller's organizations."""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Expression, QuerySet

from clusters.models import Cluster, ClusterQuerySet

# Counts that every read of clusters carries (`running_count`, `waiting_count`): the
# deployments layer above fills this in `DeploymentsConfig.ready()`, so that clusters
# imports nothing of it.
CLUSTER_COUNTS: dict[str, Callable[[], Expression]] = {}


def with_counts(clusters: QuerySet[Cluster]) -> QuerySet[Cluster]:
    """`clusters` annotated with every registered count, in one query."""
    return clusters.annotate(**{name: count() for name, count in CLUSTER_COUNTS.items()})


def cluster_list(*, user, organization_id: int | None = None) -> ClusterQuerySet:
    """The caller's clusters, with counts of running and waiting deployments."""
    clusters = with_counts(Cluster.objects.visible_to(user).select_related("runtime"))
    if organization_id is not None:
        clusters = clusters.filter(organization_id=organization_id)
    return clusters.order_by("id")
