"""Bounds on the work one member can make the service do (docs/operations.md, "Limits").

Checked when a deployment is created, each against a setting:
- `DEPLOYMENT_MAX_WAITING_PER_CLUSTER`, `DEPLOYMENT_MAX_WAITING_PER_ORGANIZATION`: how many
  deployments may wait (`pending` or `queued`) at once; the queue, the dashboard and every
  pass read them all;
- `DEPENDENCY_MAX_DEPTH`: how long a chain of waiting deployments may grow, counted from
  the new one up through its pending dependencies.

Each check reads at most its limit's worth of index entries ("is there a limit-th
waiting deployment?"), not the count of all: a create costs the same whatever the queue.
The checks are read without a lock: concurrent creates may overshoot a waiting limit by
at most the number of creates in flight, which bounds the work just the same.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError

from clusters.models import Cluster
from deployments.models import WAITING, Dependency, Deployment, Status


def check_waiting_limits(*, cluster: Cluster) -> None:
    waiting = Deployment.objects.filter(status__in=WAITING)
    per_cluster = settings.DEPLOYMENT_MAX_WAITING_PER_CLUSTER
    if _at_least(waiting.filter(cluster=cluster), per_cluster):
        raise ValidationError(
            {
                "cluster": [
                    f"The cluster already has {per_cluster} waiting deployments, its limit; "
                    "wait until some start or cancel some."
                ]
            }
        )
    per_organization = settings.DEPLOYMENT_MAX_WAITING_PER_ORGANIZATION
    if _at_least(
        waiting.filter(cluster__organization_id=cluster.organization_id), per_organization
    ):
        raise ValidationError(
            {
                "cluster": [
                    f"The organization already has {per_organization} waiting deployments, its "
                    "limit; wait until some start or cancel some."
                ]
            }
        )


def _at_least(rows, count: int) -> bool:
    """Whether `rows` holds `count` rows or more: one row fetched past an OFFSET, so the
    database stops after `count` index entries instead of counting every one."""
    return count <= 0 or rows.order_by()[count - 1 : count].exists()


def check_chain_depth(*, pending_dependency_ids: Iterable[int]) -> None:
    """Refuse a deployment that would end a chain of more than `DEPENDENCY_MAX_DEPTH`
    waiting deployments (itself included). One query per level, at most that many."""
    limit = settings.DEPENDENCY_MAX_DEPTH
    frontier = set(pending_dependency_ids)
    depth = 1
    while frontier:
        depth += 1
        if depth > limit:
            raise ValidationError(
                {
                    "depends_on": [
                        f"A chain of waiting dependencies may be at most {limit} deep; "
                        "this one would be deeper."
                    ]
                }
            )
        frontier = set(
            Dependency.objects.filter(
                dependent_id__in=frontier, dependency__status=Status.PENDING
            ).values_list("dependency_id", flat=True)
        )
