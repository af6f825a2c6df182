"""Reads for deployments, scoped to the caller's organizations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import (
    Count,
    Expression,
    F,
    OrderBy,
    Prefetch,
    Q,
    prefetch_related_objects,
)

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


def fractional_cpu_work(cluster: Cluster) -> int:
    """Deployments of `cluster` that wait or hold room with a fraction of a CPU, or none:
    no runtime that allocates whole CPUs (Slurm) may be attached to it then."""
    active = cluster.deployments.filter(status__in=[*WAITING, *HOLDS_ROOM])
    fraction = active.annotate(fraction=F("cpu") % 1000)
    return fraction.filter(Q(cpu=0) | ~Q(fraction=0)).count()


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


# --- Searching the list (the API's `GET /deployments` and the deployments page) -------------

# What `ordering` accepts (prefix `-` for descending), and what each sorts by.
ORDERING_FIELDS: dict[str, str] = {
    "id": "id",
    "name": "name",
    "image": "image",
    "cluster": "cluster__name",
    "status": "status",
    "priority": "priority",
    "created_at": "created_at",
    "queued_at": "queued_at",
    "started_at": "started_at",
    "finished_at": "finished_at",
    "updated_at": "updated_at",
}
MAX_ORDERING_TERMS = 4


def parse_statuses(values: Iterable[str]) -> tuple[str, ...]:
    """`["queued,running", "failed"]` -> `("queued", "running", "failed")`; an unknown
    status is a `ValidationError` that names it and the known ones."""
    statuses = [s.strip() for value in values for s in value.split(",") if s.strip()]
    unknown = [s for s in statuses if s not in Status.values]
    if unknown:
        raise ValidationError(
            f"Unknown status {', '.join(repr(s) for s in unknown)}; "
            f"use one or more of {', '.join(Status.values)}, separated by commas."
        )
    return tuple(dict.fromkeys(statuses))


def parse_ordering(value: str) -> tuple[str, ...]:
    """`"-priority,created_at"` -> `("-priority", "created_at")`; an unknown field is a
    `ValidationError` that names it and the allowed ones."""
    terms = [term.strip() for term in value.split(",") if term.strip()]
    unknown = [term for term in terms if term.removeprefix("-") not in ORDERING_FIELDS]
    if unknown:
        raise ValidationError(
            f"Cannot order by {', '.join(repr(t) for t in unknown)}; use one or more of "
            f"{', '.join(ORDERING_FIELDS)}, each optionally prefixed with '-' for descending."
        )
    if len(terms) > MAX_ORDERING_TERMS:
        raise ValidationError(f"At most {MAX_ORDERING_TERMS} ordering fields.")
    return tuple(terms) or ("id",)


def _order_by(terms: tuple[str, ...]) -> list[OrderBy]:
    """The ORM ordering for parsed terms: empty timestamps last either way, then the id,
    so that pages never overlap or skip."""
    expressions = []
    for term in terms:
        field = F(ORDERING_FIELDS[term.removeprefix("-")])
        descending = term.startswith("-")
        expressions.append(
            field.desc(nulls_last=True) if descending else field.asc(nulls_last=True)
        )
    if not any(term.removeprefix("-") == "id" for term in terms):
        expressions.append(F("id").asc())
    return expressions


def deployment_search(
    *,
    user,
    cluster_id: int | None = None,
    organization_id: int | None = None,
    statuses: Sequence[str] = (),
    search: str = "",
    priority_min: int | None = None,
    priority_max: int | None = None,
    created_by_id: int | None = None,
    created_by_username: str = "",
    ordering: Sequence[str] = ("id",),
) -> DeploymentQuerySet:
    """The caller's deployments narrowed by every criterion given (all must hold) and
    sorted by `ordering` (terms from `parse_ordering`); empty criteria narrow nothing.
    Build `statuses` and `ordering` from outside input with `parse_statuses` and
    `parse_ordering`, which refuse unknown values with a `ValidationError` naming them."""
    deployments = deployment_list(user=user, cluster_id=cluster_id, organization_id=organization_id)
    if statuses:
        deployments = deployments.filter(status__in=statuses)
    if search:
        deployments = deployments.filter(Q(name__icontains=search) | Q(image__icontains=search))
    if priority_min is not None:
        deployments = deployments.filter(priority__gte=priority_min)
    if priority_max is not None:
        deployments = deployments.filter(priority__lte=priority_max)
    if created_by_id is not None:
        deployments = deployments.filter(created_by_id=created_by_id)
    if created_by_username:
        deployments = deployments.filter(created_by__username__iexact=created_by_username)
    return deployments.order_by(*_order_by(tuple(ordering)))
