"""Writes for deployments: creation, the status transitions, dependency resolution.

Every status change goes through the state machine (`deployments.statemachine`); what
it refuses is `InvalidTransition` (409). Locks follow the order in `clusters.locking`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clusters.locking import lock_cluster
from clusters.models import Cluster
from clusters.signals import want_pass
from deployments.conditions import (
    condition_impossible,
    condition_met,
    waiting_for_dependencies_reason,
)
from deployments.images import validate_image_reference
from deployments.locking import lock_deployments
from deployments.models import FINISHED, HOLDS_ROOM, Condition, Dependency, Deployment, Status
from deployments.statemachine import (
    Action,
    DependencyAction,
    InvalidTransition,
    lifecycle_of,
    record_created,
    transition,
)
from hypervisor.contention import retry_on_contention
from hypervisor.resources import Resources

__all__ = ["Action", "InvalidTransition"]  # the people's actions and their 409, for callers


_PAST_TENSE = {Action.COMPLETE: "completed", Action.FAIL: "failed", Action.CANCEL: "cancelled"}
_NOUN = {Action.COMPLETE: "completion", Action.FAIL: "failure", Action.CANCEL: "cancellation"}


@dataclass(frozen=True)
class DependencySpec:
    deployment_id: int
    condition: Condition = Condition.SUCCEEDED


@dataclass(frozen=True)
class DeploymentSpec:
    """What a client asks for; shape already checked by the serializer."""

    name: str
    image: str
    resources: Resources
    priority: int = 0
    preemptible: bool = True
    depends_on: tuple[DependencySpec, ...] = ()


# --- creation ---------------------------------------------------------------------------


def deployment_create(
    *, actor: AbstractBaseUser, cluster: Cluster, spec: DeploymentSpec
) -> Deployment:
    """Create a deployment: `pending` until its dependencies are met, else `queued`.

    Raises `ValidationError` for a bad image, a request larger than the cluster, or a
    dependency that is unknown, in another organization, or already impossible.
    """
    _validate_spec(cluster=cluster, spec=spec)
    return retry_on_contention(lambda: _create(actor=actor, cluster=cluster, spec=spec))


def _validate_spec(*, cluster: Cluster, spec: DeploymentSpec) -> None:
    try:
        validate_image_reference(spec.image)
    except ValidationError as error:
        raise ValidationError({"image": error.messages}) from error
    if not spec.resources.fits_in(cluster.capacity):
        dims = [d.api_field for d in spec.resources.lacking(cluster.capacity)]
        raise ValidationError(
            {
                "resources": [
                    f"Exceeds the cluster's capacity in {', '.join(dims)}; it could never run."
                ]
            }
        )
    ids = [d.deployment_id for d in spec.depends_on]
    if len(set(ids)) != len(ids):
        raise ValidationError({"depends_on": ["Each dependency may be listed once."]})


def _create(*, actor: AbstractBaseUser, cluster: Cluster, spec: DeploymentSpec) -> Deployment:
    with transaction.atomic(durable=True):
        # Lock the dependencies (ascending pk) so none finishes between our check and
        # our commit: its resolution then waits for us and sees the new dependent.
        dependencies = {d.pk: d for d in lock_deployments(d.deployment_id for d in spec.depends_on)}
        unmet = _check_dependencies(cluster=cluster, spec=spec, dependencies=dependencies)
        now = timezone.now()
        deployment = Deployment.objects.create(
            cluster=cluster,
            name=spec.name,
            image=spec.image,
            **spec.resources.fields(),
            priority=spec.priority,
            preemptible=spec.preemptible,
            created_by=actor,
            status=Status.PENDING if unmet else Status.QUEUED,
            queued_at=None if unmet else now,
            status_reason=waiting_for_dependencies_reason(unmet) if unmet else "",
        )
        Dependency.objects.bulk_create(
            Dependency(
                dependent=deployment,
                dependency=dependencies[d.deployment_id],
                condition=d.condition,
            )
            for d in spec.depends_on
        )
        record_created(deployment, actor=actor, at=now)
        if not unmet:
            want_pass(cluster_id=cluster.pk)
    return deployment


def _check_dependencies(
    *, cluster: Cluster, spec: DeploymentSpec, dependencies: dict[int, Deployment]
) -> list[tuple[Deployment, str]]:
    """Validate each dependency; return those not yet met, with their condition."""
    unmet = []
    for item in spec.depends_on:
        other = dependencies.get(item.deployment_id)
        # A foreign deployment gets the same answer as a missing one: no existence leak.
        if other is None or other.cluster.organization_id != cluster.organization_id:
            raise ValidationError(
                {"depends_on": [f"Deployment {item.deployment_id} does not exist."]}
            )
        if condition_impossible(item.condition, other.status):
            raise ValidationError(
                {
                    "depends_on": [
                        f"Deployment {other.pk} is {other.status}: the condition "
                        f"'{item.condition}' can never be met."
                    ]
                }
            )
        if not condition_met(item.condition, other.status):
            unmet.append((other, item.condition))
    return unmet


# --- user actions -----------------------------------------------------------------------


def deployment_act(*, actor: AbstractBaseUser, deployment_id: int, action: Action) -> Deployment:
    """Complete, fail or cancel a deployment; 409 when its status does not allow it."""
    return retry_on_contention(
        lambda: _act(actor=actor, deployment_id=deployment_id, action=action)
    )


def _act(*, actor: AbstractBaseUser, deployment_id: int, action: Action) -> Deployment:
    cluster_id = Deployment.objects.values_list("cluster_id", flat=True).get(pk=deployment_id)
    with transaction.atomic(durable=True):
        cluster = lock_cluster(cluster_id)  # lock order step 1: allocation may change
        locked = lock_deployments([deployment_id])  # step 2
        if cluster is None or not locked:
            raise Deployment.DoesNotExist("The deployment no longer exists.")
        [deployment] = locked
        held_room = deployment.status in HOLDS_ROOM
        transition(
            deployment,
            action,
            cluster=cluster,
            reason=f"{_PAST_TENSE[action]} by {actor.get_username()}",
            lifecycle=lifecycle_of(cluster),
            actor=actor,
        )
        resolve_dependents(finished_ids=[deployment.pk])
        # Only work that held room frees it; start events name it as what made room.
        cause = f"the {_NOUN[action]} of deployment {deployment.pk}" if held_room else ""
        want_pass(cluster_id=cluster_id, cause=cause)
    return deployment


# --- dependency resolution --------------------------------------------------------------


def resolve_dependents(*, finished_ids: Iterable[int]) -> None:
    """Settle the pending deployments that wait, directly or transitively, on `finished_ids`.

    Must run inside the transaction that finished them. The whole affected set is
    locked in ascending pk order (dependents always have larger pks than what they wait
    for), then settled in that order, which is a topological order: a dependent whose
    condition became impossible is cancelled (naming the dependency), one whose
    conditions are all met is queued, and the effect flows on to its own dependents.
    """
    closure = _lock_pending_closure(set(finished_ids))
    if not closure:
        return
    statuses = _dependency_statuses(closure)
    clusters_to_schedule: set[int] = set()
    for deployment in closure:  # ascending pk: dependencies are settled first
        links = statuses[deployment.pk]
        blocking = [(dep, c) for dep, c in links if condition_impossible(c, dep.status)]
        if blocking:
            dep, c = blocking[0]
            reason = (
                f"cancelled: its dependency deployment {dep.pk} ({dep.name}) is {dep.status}, "
                f"so the condition '{c}' can never be met"
            )
            _settle(deployment, DependencyAction.ABANDON, reason, related_id=dep.pk)
        elif all(condition_met(c, dep.status) for dep, c in links):
            _settle(deployment, DependencyAction.RELEASE, "dependencies met; waiting for resources")
            clusters_to_schedule.add(deployment.cluster_id)
        else:
            deployment.status_reason = waiting_for_dependencies_reason(links)
            deployment.save(update_fields=["status_reason", "updated_at"])
    for cluster_id in sorted(clusters_to_schedule):
        want_pass(cluster_id=cluster_id)


def _settle(
    deployment: Deployment, action: DependencyAction, reason: str, *, related_id: int | None = None
) -> None:
    """A pending deployment's dependencies decided: it holds no room either way."""
    transition(
        deployment,
        action,
        cluster=deployment.cluster,
        reason=reason,
        lifecycle=lifecycle_of(deployment.cluster),
        related_id=related_id,
    )


def _pending_dependents(ids: set[int]) -> set[int]:
    """Every pending deployment that waits, directly or transitively, on one of `ids`."""
    found: set[int] = set()
    frontier = ids
    while frontier:
        frontier = (
            set(
                Dependency.objects.filter(
                    dependency_id__in=frontier, dependent__status=Status.PENDING
                ).values_list("dependent_id", flat=True)
            )
            - found
        )
        found |= frontier
    return found


def _lock_pending_closure(finished: set[int]) -> list[Deployment]:
    """Lock the pending closure; re-read it under the locks until it stops growing.

    A deployment created concurrently has a larger pk than every row already locked,
    so locking the newcomers afterwards still follows ascending pk order.
    """
    locked: dict[int, Deployment] = {}
    while True:
        wanted = _pending_dependents(finished) - locked.keys()
        if not wanted:
            break
        locked.update({d.pk: d for d in lock_deployments(wanted)})
    return sorted((d for d in locked.values() if d.status == Status.PENDING), key=lambda d: d.pk)


def _dependency_statuses(
    closure: list[Deployment],
) -> dict[int, list[tuple[Deployment, str]]]:
    """For each deployment of the closure, its dependencies (live objects) and conditions.

    Members of the closure are the same objects as in `closure`, so a status set while
    settling one is seen by those that wait on it.
    """
    members = {d.pk: d for d in closure}
    links = list(Dependency.objects.filter(dependent_id__in=members).select_related("dependency"))
    result: dict[int, list[tuple[Deployment, str]]] = {pk: [] for pk in members}
    for link in links:
        dependency = members.get(link.dependency_id, link.dependency)
        result[link.dependent_id].append((dependency, link.condition))
    return result


def dependencies_resolve_all() -> None:
    """Safety net: settle every pending deployment whose dependency has finished."""
    finished = sorted(
        set(
            Dependency.objects.filter(
                dependent__status=Status.PENDING, dependency__status__in=FINISHED
            ).values_list("dependency_id", flat=True)
        )
    )
    for pk in finished:
        retry_on_contention(lambda pk=pk: _resolve_in_transaction(pk))


def _resolve_in_transaction(finished_id: int) -> None:
    with transaction.atomic(durable=True):
        resolve_dependents(finished_ids=[finished_id])
