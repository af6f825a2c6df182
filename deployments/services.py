"""Writes for deployments: creation, the status transitions, dependency resolution.

Every status change goes through the state machine (`deployments.statemachine`); what
it refuses is `InvalidTransition` (409). Locks follow the order in `clusters.locking`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Min
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
from deployments.limits import check_chain_depth, check_waiting_limits
from deployments.locking import lock_deployments
from deployments.models import (
    FINISHED,
    HOLDS_ROOM,
    Condition,
    Dependency,
    Deployment,
    DeploymentLog,
    Status,
)
from deployments.signals import leave_cascade
from deployments.statemachine import (
    RULES,
    Action,
    DependencyAction,
    InvalidTransition,
    RuntimeAction,
    lifecycle_of,
    record_created,
    transition,
)
from deployments.workloads import validate_command, validate_env
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
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)


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


def capacity_refusal(dimensions: list[str]) -> str:
    return f"Exceeds the cluster's capacity in {', '.join(dimensions)}; it could never run."


def whole_cpu_refusal(*, cluster: Cluster, resources: Resources) -> str | None:
    """Why a request is refused on this cluster's runtime: a fraction of a CPU (or none)
    where the engine allocates whole CPUs (Slurm); None when it is not."""
    if cluster.runtime_id is None:
        return None
    what = "a deployment's request"
    return cluster.runtime.cpu_refusal(resources.cpu, what=what, at_least_one=True)


def _validate_spec(*, cluster: Cluster, spec: DeploymentSpec) -> None:
    """Every problem of the spec at once (image, command, env, capacity, repeated ids)."""
    errors: dict[str, list[str]] = {}
    try:
        validate_image_reference(spec.image)
    except ValidationError as error:
        errors["image"] = error.messages
    for validate, value in ((validate_command, spec.command), (validate_env, spec.env)):
        try:
            validate(value)
        except ValidationError as error:
            errors.update(error.message_dict)
    if not spec.resources.fits_in(cluster.capacity):
        dims = [d.api_field for d in spec.resources.lacking(cluster.capacity)]
        errors["resources"] = [capacity_refusal(dims)]
    if refusal := whole_cpu_refusal(cluster=cluster, resources=spec.resources):
        errors.setdefault("resources", []).append(refusal)
    ids = [d.deployment_id for d in spec.depends_on]
    if len(set(ids)) != len(ids):
        errors["depends_on"] = ["Each dependency may be listed once."]
    if errors:
        raise ValidationError(errors)


def _create(*, actor: AbstractBaseUser, cluster: Cluster, spec: DeploymentSpec) -> Deployment:
    with transaction.atomic(durable=True):
        # Lock the dependencies (ascending pk) so none finishes between our check and
        # our commit: its resolution then waits for us and sees the new dependent.
        dependencies = {d.pk: d for d in lock_deployments(d.deployment_id for d in spec.depends_on)}
        unmet = _check_dependencies(cluster=cluster, spec=spec, dependencies=dependencies)
        check_waiting_limits(cluster=cluster)
        check_chain_depth(
            pending_dependency_ids=[d.pk for d, _ in unmet if d.status == Status.PENDING]
        )
        now = timezone.now()
        deployment = Deployment.objects.create(
            cluster=cluster,
            name=spec.name,
            image=spec.image,
            **spec.resources.fields(),
            priority=spec.priority,
            preemptible=spec.preemptible,
            command=spec.command,
            env=spec.env,
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
            want_pass(cluster_id=cluster.pk, arrival=deployment.pk, shortcut=True)
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
        if not resolve_dependents(finished_ids=[deployment.pk]):
            leave_cascade(organization_id=cluster.organization_id, after_pk=deployment.pk)
        # Only work that held room frees it; start events name it as what made room.
        cause = f"the {_NOUN[action]} of deployment {deployment.pk}" if held_room else ""
        want_pass(cluster_id=cluster_id, cause=cause, shortcut=True)
    return deployment


# --- dependency resolution --------------------------------------------------------------
#
# When a deployment finishes, its pending dependents are settled: cancelled when a
# condition became impossible, queued when all are met, and so on down the chain. A
# cascade is bounded per transaction (`DEPENDENCY_CASCADE_BATCH`): one that fits is
# settled in the transaction that finished the deployment (the answer shows it); a
# larger one is left whole to `dependencies_sweep` (`deployments.signals.cascade_left`:
# the scheduler runs it after that transaction commits, as an RQ job or in-process), in
# short transactions of at most a batch each (docs/scheduling.md, "Cascades").


def resolve_dependents(*, finished_ids: Iterable[int]) -> bool:
    """Settle the pending deployments that wait, directly or transitively, on `finished_ids`.

    Must run inside the transaction that finished them. Returns False, having settled
    nothing, when they are more than `DEPENDENCY_CASCADE_BATCH`: the caller then has
    them swept after its commit. Otherwise the whole affected set is locked in ascending
    pk order (dependents always have larger pks than what they wait for) and settled in
    that order, a topological order, by `_settle_pending`.
    """
    closure = _lock_pending_closure(set(finished_ids), limit=settings.DEPENDENCY_CASCADE_BATCH)
    if closure is None:
        return False
    _settle_pending(closure)
    return True


def _settle_pending(deployments: list[Deployment]) -> None:
    """Settle locked pending deployments, given in ascending pk order.

    A dependent whose condition became impossible is cancelled (naming the dependency),
    one whose conditions are all met is queued, and the effect flows on to those later
    in the list that wait on it.
    """
    statuses = _dependency_statuses(deployments)
    clusters_to_schedule: set[int] = set()
    for deployment in deployments:  # ascending pk: dependencies are settled first
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
        elif deployment.status_reason != (reason := waiting_for_dependencies_reason(links)):
            deployment.status_reason = reason
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


# The pending closure in one query: a recursive walk down the dependency links through
# pending deployments, cut off by LIMIT (PostgreSQL and SQLite both stop the walk once
# enough rows are out). Level by level it was a query per link of a chain: 5 s to find
# that a 5,000-long chain exceeds a batch.
_PENDING_CLOSURE_SQL = """
WITH RECURSIVE closure(id) AS (
    SELECT link.dependent_id FROM {links} link
    JOIN {deployments} dependent ON dependent.id = link.dependent_id
    WHERE link.dependency_id IN ({ids}) AND dependent.status = %s
  UNION
    SELECT link.dependent_id FROM {links} link
    JOIN closure ON link.dependency_id = closure.id
    JOIN {deployments} dependent ON dependent.id = link.dependent_id
    WHERE dependent.status = %s
)
SELECT id FROM closure LIMIT %s
"""


def _pending_dependents(ids: set[int], *, limit: int) -> set[int] | None:
    """Every pending deployment that waits, directly or transitively, on one of `ids`;
    None when they are more than `limit`."""
    if not ids:
        return set()
    sql = _PENDING_CLOSURE_SQL.format(
        links=Dependency._meta.db_table,
        deployments=Deployment._meta.db_table,
        ids=", ".join(["%s"] * len(ids)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*sorted(ids), Status.PENDING, Status.PENDING, limit + 1])
        found = {row[0] for row in cursor.fetchall()}
    return None if len(found) > limit else found


def _lock_pending_closure(finished: set[int], *, limit: int) -> list[Deployment] | None:
    """Lock the pending closure; re-read it under the locks until it stops growing.
    None when it has more than `limit` members.

    A deployment created concurrently has a larger pk than every row already locked,
    so locking the newcomers afterwards still follows ascending pk order.
    """
    locked: dict[int, Deployment] = {}
    while True:
        closure = _pending_dependents(finished, limit=limit)
        if closure is None:
            return None
        wanted = closure - locked.keys()
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


def dependencies_sweep(*, organization_id: int, after_pk: int = 0) -> None:
    """Settle every pending deployment of the organization whose pk is above `after_pk`,
    in ascending pk order, `DEPENDENCY_CASCADE_BATCH` per transaction.

    Ascending pk is a topological order (a dependency's pk is below its dependent's), so
    each is settled after everything it waits on, whichever batch settled that. Each
    batch commits on its own: an interruption leaves every deployment either settled or
    still pending (never running on an unmet condition), and the safety net's
    `dependencies_resolve_all` sweeps again.
    """
    cursor: int | None = after_pk
    while cursor is not None:
        cursor = retry_on_contention(
            lambda after=cursor: _sweep_batch(organization_id=organization_id, after_pk=after)
        )


def _sweep_batch(*, organization_id: int, after_pk: int) -> int | None:
    """Settle the next batch; return the last pk it covered, None when none was left."""
    with transaction.atomic(durable=True):
        ids = list(
            Deployment.objects.filter(
                cluster__organization_id=organization_id, status=Status.PENDING, pk__gt=after_pk
            )
            .order_by("pk")
            .values_list("pk", flat=True)[: settings.DEPENDENCY_CASCADE_BATCH]
        )
        if not ids:
            return None
        _settle_pending([d for d in lock_deployments(ids) if d.status == Status.PENDING])
    return ids[-1]


def dependencies_resolve_all() -> None:
    """Safety net: sweep every organization with a pending deployment whose dependency
    has finished, from the first such deployment on."""
    stale = (
        Dependency.objects.filter(dependent__status=Status.PENDING, dependency__status__in=FINISHED)
        .values("dependent__cluster__organization_id")
        .annotate(first=Min("dependent_id"))
        .order_by("dependent__cluster__organization_id")
    )
    for row in stale:
        dependencies_sweep(
            organization_id=row["dependent__cluster__organization_id"], after_pk=row["first"] - 1
        )


# --- what a runtime reports -------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeReport:
    """A runtime's confirmation or news about one deployment's workload.

    `log`, when given, replaces the kept lines (the last `DeploymentLog.MAX_LINES`).
    """

    action: RuntimeAction
    reason: str
    exit_code: int | None = None
    log: list[str] | None = None
    source: str = ""


def deployment_report(*, deployment_id: int, report: RuntimeReport) -> bool:
    """Apply a runtime's report if the deployment's status still allows it.

    Reports race with people and passes (a cancel while a start is confirmed): one that
    no longer applies is dropped and answers False. A report that releases room asks
    for a pass; one that finishes the deployment settles its dependents.
    """
    return retry_on_contention(lambda: _report(deployment_id=deployment_id, report=report))


def _report(*, deployment_id: int, report: RuntimeReport) -> bool:
    cluster_id = (
        Deployment.objects.filter(pk=deployment_id).values_list("cluster_id", flat=True).first()
    )
    if cluster_id is None:
        return False
    with transaction.atomic(durable=True):
        cluster = lock_cluster(cluster_id)  # lock order step 1
        locked = lock_deployments([deployment_id])  # step 2
        if cluster is None or not locked:
            return False
        [deployment] = locked
        if deployment.status not in RULES[report.action].sources:
            return False
        held_room = deployment.status in HOLDS_ROOM
        moved = transition(
            deployment,
            report.action,
            cluster=cluster,
            reason=report.reason,
            lifecycle=lifecycle_of(cluster),
        )
        if report.exit_code is not None and moved.status in FINISHED:
            deployment.exit_code = report.exit_code
            deployment.save(update_fields=["exit_code"])
        if report.log is not None:
            _keep_log(deployment, report.log, source=report.source)
        if moved.status in FINISHED and not resolve_dependents(finished_ids=[deployment.pk]):
            leave_cascade(organization_id=cluster.organization_id, after_pk=deployment.pk)
        if held_room and moved.status not in HOLDS_ROOM:
            ended = "ending" if moved.status in FINISHED else "stopping"
            want_pass(cluster_id=cluster.pk, cause=f"deployment {deployment.pk} {ended}")
    return True


def _keep_log(deployment: Deployment, lines: list[str], *, source: str) -> None:
    """The last lines, without NUL characters (PostgreSQL's JSON cannot hold them)."""
    kept = [line.replace("\x00", "") for line in lines[-DeploymentLog.MAX_LINES :]]
    DeploymentLog.objects.update_or_create(
        deployment=deployment,
        defaults={
            "lines": kept,
            "truncated": len(lines) > DeploymentLog.MAX_LINES,
            "source": source,
        },
    )


def deployment_note(*, deployment_id: int, status: str, reason: str) -> None:
    """Say why a deployment waits in its status (an unreachable runtime), unless it moved."""
    Deployment.objects.filter(pk=deployment_id, status=status).exclude(status_reason=reason).update(
        status_reason=reason, updated_at=timezone.now()
    )
