"""The pure scheduling planner: a ``ClusterSnapshot`` goes in, a ``Plan`` comes out.

No ORM and no Django. The parts:
- ``planner.model``: the public model (the snapshot, the plan and its entries);
- ``planner.engine``: the walk shared by every policy (starts, preemptions in
  guarantee 5's order: lowest priority first, then the most recently started; starvation
  reservations, the queue's reasons);
- ``planner.policies``: one module per policy (``fifo``, ``pack``) and their registry;
- ``planner.packsearch``: the search behind ``pack`` (which deployments should run);
- ``planner.reasons``: the sentences that say why a deployment waits.

Units are exact integers: CPU in millicores, RAM in MiB, GPUs as whole devices.
"""

from __future__ import annotations

from planner.model import (
    ClusterSnapshot,
    Plan,
    Preemption,
    QueueEntry,
    RunningDeployment,
    Start,
    WaitingDeployment,
    is_starving,
)
from planner.policies import DEFAULT_POLICY, POLICIES, Policy

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "ClusterSnapshot",
    "Plan",
    "Policy",
    "Preemption",
    "QueueEntry",
    "RunningDeployment",
    "Start",
    "WaitingDeployment",
    "is_starving",
    "plan",
]


def plan(snapshot: ClusterSnapshot) -> Plan:
    """Decide what starts and what is preempted on one cluster, and explain the queue.

    Pure and deterministic: the same snapshot, with its tuples in any order, gives the
    same plan. The plan is net: no deployment is both preempted and started.
    """
    return POLICIES[snapshot.policy](snapshot)
