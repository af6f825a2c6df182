"""Writes for clusters: create, change (capacity, policy), delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clusters.locking import lock_cluster
from clusters.models import Cluster
from clusters.signals import want_pass
from hypervisor.contention import retry_on_contention
from hypervisor.exceptions import Conflict
from hypervisor.resources import Resources
from orgs.models import Organization
from planner import Policy

DUPLICATE_NAME = "A cluster with this name already exists in the organization."


class ClusterBusy(Conflict):
    """The cluster still runs or queues work."""


class CapacityError(Conflict):
    """A capacity change would leave running work without room."""


@dataclass(frozen=True)
class ClusterChanges:
    """Fields to change; None means unchanged (starvation uses `starvation_set`)."""

    name: str | None = None
    capacity: Resources | None = None
    policy: Policy | None = None
    starvation_after_seconds: int | None = None
    starvation_set: bool = False


def cluster_create(
    *,
    organization: Organization,
    name: str,
    capacity: Resources,
    policy: Policy = Policy.PACK,
    starvation_after_seconds: int | None = None,
) -> Cluster:
    """Create a cluster; a name already taken in the organization is a `ValidationError`."""
    cluster = Cluster(
        organization=organization,
        name=name,
        policy=policy.value,
        starvation_after_seconds=starvation_after_seconds,
    )
    cluster.set_capacity(capacity)
    try:
        with transaction.atomic():  # a savepoint, so that we may still query after
            cluster.save()
    except IntegrityError:
        # Two requests raced for one name: the unique constraint chose; same 400 as a
        # name taken beforehand.
        if Cluster.objects.filter(organization=organization, name=name).exists():
            raise ValidationError({"name": [DUPLICATE_NAME]}) from None
        raise
    return cluster


def cluster_update(*, cluster_id: int, changes: ClusterChanges) -> Cluster:
    """Change a cluster under its lock; shrinking below what is allocated is 409."""
    return retry_on_contention(lambda: _update(cluster_id=cluster_id, changes=changes))


def _update(*, cluster_id: int, changes: ClusterChanges) -> Cluster:
    with transaction.atomic(durable=True):
        cluster = lock_cluster(cluster_id)
        if cluster is None:
            raise Cluster.DoesNotExist("The cluster no longer exists.")
        before = cluster.capacity
        if changes.capacity is not None:
            if not cluster.allocated.fits_in(changes.capacity):
                raise CapacityError(
                    "The new capacity is below what running deployments hold "
                    f"(allocated: {cluster.allocated_cpu / 1000:g} CPU, "
                    f"{cluster.allocated_ram_mb} MiB RAM, {cluster.allocated_gpu} GPU); "
                    "complete or cancel some first."
                )
            cluster.set_capacity(changes.capacity)
        if changes.name is not None:
            cluster.name = changes.name
        if changes.policy is not None:
            cluster.policy = changes.policy.value
        if changes.starvation_set:
            cluster.starvation_after_seconds = changes.starvation_after_seconds
        cause = _change_cause(before=before, after=cluster.capacity, changes=changes)
        cluster.save()
        # Capacity, policy and reservations all change what the planner would do.
        want_pass(cluster_id=cluster.pk, cause=cause)
    return cluster


def _change_cause(*, before: Resources, after: Resources, changes: ClusterChanges) -> str:
    """How start events name this change: what made room."""
    if before.fits_in(after) and before != after:
        return "a capacity increase of the cluster"
    if changes.policy is not None or changes.starvation_set:
        return "a change of the cluster's scheduling settings"
    return "a change of the cluster"


# How much work a cluster still has (running or waiting deployments): filled by the
# deployments layer above in `DeploymentsConfig.ready()`, so that clusters imports
# nothing of it.
ACTIVE_WORK: list[Callable[[Cluster], int]] = []


def cluster_ensure_idle(*, cluster: Cluster) -> None:
    """Raise `ClusterBusy` while the cluster has running or waiting deployments."""
    active = sum(count(cluster) for count in ACTIVE_WORK)
    if active:
        raise ClusterBusy(
            f"Cluster '{cluster.name}' still has {active} running or waiting deployment(s); "
            "complete or cancel them first."
        )


def cluster_delete(*, cluster_id: int) -> None:
    """Delete an idle cluster with its finished deployments."""
    with transaction.atomic(durable=True):
        # Plain FOR UPDATE (not NO KEY): it also holds off concurrent inserts of
        # deployments on this cluster, which would otherwise vanish in the cascade.
        cluster = Cluster.objects.select_for_update().filter(pk=cluster_id).first()
        if cluster is None:
            raise Cluster.DoesNotExist("The cluster no longer exists.")
        cluster_ensure_idle(cluster=cluster)
        cluster.delete()


def organization_clusters_ensure_idle(organization: Organization) -> None:
    """`orgs.services.DELETE_GUARDS`: refuse while any of its clusters has work."""
    # FOR UPDATE in pk order: also holds off new deployments on these clusters.
    for cluster in organization.clusters.select_for_update().order_by("pk"):
        cluster_ensure_idle(cluster=cluster)
