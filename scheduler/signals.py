"""Receivers of the lower layers' signals, connected in `SchedulerConfig.ready()`."""

from __future__ import annotations

from clusters.models import Cluster
from scheduler.triggers import request_dependencies_sweep, request_schedule


def on_pass_wanted(
    sender,
    *,
    cluster_id: int,
    cause: str = "",
    arrival: int | None = None,
    shortcut: bool = False,
    **kwargs,
) -> None:
    """`clusters.signals.pass_wanted`: a change below asks for a pass on commit."""
    request_schedule(cluster_id=cluster_id, cause=cause, arrival=arrival, shortcut=shortcut)


def on_cascade_left(sender, *, organization_id: int, after_pk: int, **kwargs) -> None:
    """`deployments.signals.cascade_left`: a cascade too large for one transaction."""
    request_dependencies_sweep(organization_id=organization_id, after_pk=after_pk)


def on_runtime_reachable_again(sender, *, runtime_id: int, **kwargs) -> None:
    """`runtime.signals.runtime_reachable_again`: its clusters' held-back deployments
    may start."""
    for cluster_id in Cluster.objects.filter(runtime_id=runtime_id).values_list("pk", flat=True):
        request_schedule(cluster_id=cluster_id, cause="the runtime answering again")
