"""Writes for clusters: create, change (capacity, policy), delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce

from clusters.locking import lock_cluster
from clusters.models import Cluster
from clusters.signals import want_pass
from hypervisor.contention import retry_on_contention
from hypervisor.exceptions import Conflict
from hypervisor.resources import Resources
from orgs.models import Organization
from planner import Policy
from runtime.locking import lock_runtime
from runtime.models import Runtime
from runtime.selectors import runtime_available

DUPLICATE_NAME = "A cluster with this name already exists in the organization."


class ClusterBusy(Conflict):
    """The cluster still runs or queues work."""

    code = "cluster_busy"


class CapacityError(Conflict):
    """A capacity change would leave running work without room."""

    code = "capacity_below_allocated"


class RuntimeBusy(Conflict):
    """The runtime cannot change while deployments hold room on it."""


@dataclass(frozen=True)
class ClusterChanges:
    """Fields to change; None means unchanged (starvation uses `starvation_set`)."""

    name: str | None = None
    capacity: Resources | None = None
    policy: Policy | None = None
    starvation_after_seconds: int | None = None
    starvation_set: bool = False
    runtime: str | None = None  # a runtime's name; None with runtime_set: manual
    runtime_set: bool = False


def cluster_create(
    *,
    organization: Organization,
    name: str,
    capacity: Resources,
    policy: Policy = Policy.PACK,
    starvation_after_seconds: int | None = None,
    runtime: str | None = None,
) -> Cluster:
    """Create a cluster; a name already taken in the organization is a `ValidationError`,
    and so is a runtime that is unknown, not available to it, or without room for it."""
    _ensure_unique_name(organization_id=organization.pk, name=name)
    cluster = Cluster(
        organization=organization,
        name=name,
        policy=policy.value,
        starvation_after_seconds=starvation_after_seconds,
        runtime=_available_runtime(organization_id=organization.pk, name=runtime),
    )
    cluster.set_capacity(capacity)
    if cluster.runtime is not None:
        _check_whole_cpus(cluster=cluster, attaching=False)
    try:
        with transaction.atomic():  # a savepoint, so that we may still query after
            if cluster.runtime is not None:
                lock_runtime(cluster.runtime.pk)
                _check_runtime_room(cluster=cluster)
            cluster.save()
    except IntegrityError:
        # Two requests raced for one name: the unique constraint chose; same 400 as a
        # name taken beforehand.
        if Cluster.objects.filter(organization=organization, name=name).exists():
            raise ValidationError({"name": [DUPLICATE_NAME]}) from None
        raise
    return cluster


def _ensure_unique_name(*, organization_id: int, name: str, exclude: int | None = None) -> None:
    taken = Cluster.objects.filter(organization_id=organization_id, name=name).exclude(pk=exclude)
    if taken.exists():
        raise ValidationError({"name": [DUPLICATE_NAME]})


def cluster_update(*, cluster_id: int, changes: ClusterChanges) -> Cluster:
    """Change a cluster under its lock; shrinking below what is allocated is 409."""
    return retry_on_contention(lambda: _update(cluster_id=cluster_id, changes=changes))


def _update(*, cluster_id: int, changes: ClusterChanges) -> Cluster:
    current = Cluster.objects.filter(pk=cluster_id).values("organization_id", "runtime_id").first()
    if current is None:
        raise Cluster.DoesNotExist("The cluster no longer exists.")
    new_runtime = None
    if changes.runtime_set:
        new_runtime = _available_runtime(
            organization_id=current["organization_id"], name=changes.runtime
        )
    with transaction.atomic(durable=True):
        # Lock order: the runtime row whose sum of capacities may grow, then the cluster.
        runtime_id = new_runtime.pk if new_runtime else current["runtime_id"]
        if runtime_id is not None:
            lock_runtime(runtime_id)
        cluster = lock_cluster(cluster_id)
        if cluster is None:
            raise Cluster.DoesNotExist("The cluster no longer exists.")
        if not changes.runtime_set and cluster.runtime_id not in (None, runtime_id):
            # Re-attached between our read and our lock (rare): lock that one too. Out of
            # order, so a deadlock is possible; PostgreSQL detects it and we retry.
            lock_runtime(cluster.runtime_id)
        if changes.runtime_set:
            _change_runtime(cluster=cluster, runtime=new_runtime)
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
            _ensure_unique_name(
                organization_id=cluster.organization_id, name=changes.name, exclude=cluster.pk
            )
            cluster.name = changes.name
        if changes.policy is not None:
            cluster.policy = changes.policy.value
        if changes.starvation_set:
            cluster.starvation_after_seconds = changes.starvation_after_seconds
        if cluster.runtime_id is not None and (changes.runtime_set or changes.capacity):
            _check_whole_cpus(cluster=cluster, attaching=changes.runtime_set)
            _check_runtime_room(cluster=cluster)
        cause = _change_cause(before=before, after=cluster.capacity, changes=changes)
        cluster.save()
        # Capacity, policy and reservations all change what the planner would do.
        want_pass(cluster_id=cluster.pk, cause=cause)
    return cluster


def _available_runtime(*, organization_id: int, name: str | None) -> Runtime | None:
    if name is None:
        return None
    runtime = runtime_available(name=name, organization_id=organization_id)
    if runtime is None:
        raise ValidationError(
            {"runtime": [f"No runtime named {name!r} is available to this organization."]}
        )
    return runtime


def _change_runtime(*, cluster: Cluster, runtime: Runtime | None) -> None:
    """Attach, change or detach; refused while deployments hold room (their workloads
    run on the current runtime)."""
    if (runtime.pk if runtime else None) == cluster.runtime_id:
        return
    if cluster.allocated != Resources(0, 0, 0):
        raise RuntimeBusy(
            "Deployments hold room on this cluster (starting, running or stopping); "
            "its runtime can change once none does."
        )
    cluster.runtime = runtime


def _check_whole_cpus(*, cluster: Cluster, attaching: bool) -> None:
    """On a runtime that allocates whole CPUs (Slurm), a fractional capacity is refused, and
    so is attaching it while deployments asking for a fraction of a CPU (or none) wait
    (400): each would hold a whole CPU there. Deployments that hold room already keep any runtime
    (`RuntimeBusy`); creating one with a fractional request there is refused by
    `deployments.services`, and the Slurm backend refuses to submit one."""
    runtime = cluster.runtime
    refusal = runtime.cpu_refusal(
        cluster.capacity_cpu, what="the cluster's capacity", at_least_one=False
    )
    if refusal:
        raise ValidationError({"capacity": [refusal]})
    if not attaching or not runtime.whole_cpus:
        return
    fractional = sum(count(cluster) for count in FRACTIONAL_CPU_WORK)
    if fractional:
        raise ValidationError(
            {
                "runtime": [
                    f"Runtime {runtime.name!r} is {runtime.kind}, which allocates whole CPUs; "
                    f"{fractional} deployment(s) of this cluster ask for a fraction of a CPU "
                    "or none (cpu); cancel them, or let them finish, first."
                ]
            }
        )


def _check_runtime_room(*, cluster: Cluster) -> None:
    """The capacities of a runtime's clusters may not sum above its own (400).
    The caller holds the runtime row's lock."""
    runtime = cluster.runtime
    if not runtime.has_capacity:
        return
    others = Cluster.objects.filter(runtime=runtime).exclude(pk=cluster.pk)
    taken = others.aggregate(
        cpu=Coalesce(Sum("capacity_cpu"), 0),
        ram_mb=Coalesce(Sum("capacity_ram_mb"), 0),
        gpu=Coalesce(Sum("capacity_gpu"), 0),
    )
    total = Resources(taken["cpu"], taken["ram_mb"], taken["gpu"]) + cluster.capacity
    limit = Resources(runtime.capacity_cpu, runtime.capacity_ram_mb, runtime.capacity_gpu)
    if not total.fits_in(limit):
        raise ValidationError(
            {
                "capacity": [
                    f"Runtime {runtime.name!r} has room for {limit.cpu / 1000:g} CPU, "
                    f"{limit.ram_mb} MiB RAM and {limit.gpu} GPU in all; its other clusters "
                    f"take {taken['cpu'] / 1000:g} CPU, {taken['ram_mb']} MiB and "
                    f"{taken['gpu']} GPU."
                ]
            }
        )


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
# How many of them ask for a fraction of a CPU, or none (filled the same way).
FRACTIONAL_CPU_WORK: list[Callable[[Cluster], int]] = []


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
