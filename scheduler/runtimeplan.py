"""A pass's plan on a cluster with a runtime: what really runs never exceeds capacity.

The planner decides as on any cluster; on a runtime cluster its plan is then narrowed:
- a start that needs preemptions waits: its victims go to `stopping` (holding their
  room) and the preemptor starts in a later pass, once the runtime confirmed the stops
  and the room is really free;
- while any deployment of the cluster is `stopping`, no new preemption is made: the
  room being freed is already promised, and preempting again for the same preemptor
  would stop more than needed (guarantee 5). Starts into free room go on;
- whenever a start waits or a victim still holds its room, the other starts are kept
  only as far as they fit in the room that is free now: the planner may have placed a
  start into room that a victim frees, and the victim keeps holding it until the
  runtime confirms the stop (the database's capacity CHECK would refuse the pass);
- while the runtime is unreachable, nothing starts and nothing is preempted; every
  waiting deployment's reason says why.
"""

from __future__ import annotations

from collections.abc import Mapping

from clusters.models import Cluster
from deployments.locking import DeploymentRow
from deployments.models import HOLDS_ROOM, Status
from hypervisor.resources import Resources
from planner import Plan, QueueEntry, Start
from runtime.models import Health


def runtime_plan(cluster: Cluster, plan: Plan, rows: Mapping[int, DeploymentRow]) -> Plan:
    """Narrow `plan` for the cluster's runtime (see the module docstring)."""
    runtime = cluster.runtime
    if runtime.status == Health.UNREACHABLE:
        reason = (
            f"runtime {runtime.name} is unreachable since "
            f"{runtime.status_since:%Y-%m-%d %H:%M:%S %Z}; nothing new starts on this "
            "cluster until it answers"
        )
        held = tuple(QueueEntry(s.deployment_id, 0, reason) for s in plan.starts)
        queue = tuple(QueueEntry(e.deployment_id, e.position, reason) for e in plan.queue)
        return Plan(starts=(), preemptions=(), queue=queue + held)
    stopping = any(row.status == Status.STOPPING for row in rows.values())
    starts, deferred = [], []
    for start in plan.starts:
        (deferred if start.preempted else starts).append(start)
    if not deferred:
        return plan
    waits = []
    for start in deferred:
        victims = ", ".join(str(v) for v in start.preempted)
        if stopping:
            reason = _WAITS_FOR_ROOM
        else:
            reason = f"waiting for deployment(s) {victims} to stop: preempted to make room for it"
        waits.append(QueueEntry(start.deployment_id, 0, reason))
    preemptions = () if stopping else plan.preemptions
    starts, later = _into_free_room(cluster, starts, rows)
    waits += [QueueEntry(s.deployment_id, 0, _WAITS_FOR_ROOM) for s in later]
    return Plan(starts=tuple(starts), preemptions=preemptions, queue=plan.queue + tuple(waits))


_WAITS_FOR_ROOM = "waiting for the room that stopping deployments release"


def _into_free_room(
    cluster: Cluster, starts: list[Start], rows: Mapping[int, DeploymentRow]
) -> tuple[list[Start], list[Start]]:
    """The starts that fit, in the plan's order, in what the room-holding rows leave free
    (victims included: they hold room until stopped); and those that must wait."""
    held = Resources.total(row.resources for row in rows.values() if row.status in HOLDS_ROOM)
    free = cluster.capacity - held
    kept, later = [], []
    for start in starts:
        need = rows[start.deployment_id].resources
        if need.fits_in(free):
            kept.append(start)
            free = free - need
        else:
            later.append(start)
    return kept, later
