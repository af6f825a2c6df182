"""The planner's public model: a ``ClusterSnapshot`` goes in, a ``Plan`` comes out.

Pure: no ORM and no Django. ``scheduler.services`` builds the snapshot from locked rows
and applies the plan; the property tests, the benchmarks and the queue endpoint call
``planner.plan`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hypervisor.resources import Resources


@dataclass(frozen=True, slots=True)
class RunningDeployment:
    id: int
    resources: Resources
    priority: int
    preemptible: bool
    started_at: datetime
    # When it entered the queue. A preempted deployment goes back to the queue at its
    # original place, so the planner needs this to order victims among the waiting ones.
    # Optional for compatibility: when missing, ``started_at`` stands in for it (a
    # deployment is queued before it starts, so that is an upper bound).
    queued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WaitingDeployment:
    """A deployment in status ``queued`` (its dependencies are met)."""

    id: int
    resources: Resources
    priority: int
    preemptible: bool
    queued_at: datetime


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    capacity: Resources
    running: tuple[RunningDeployment, ...]
    waiting: tuple[WaitingDeployment, ...]
    now: datetime
    policy: str = "fifo"  # a name in planner.policies.POLICIES
    starvation_after_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Start:
    """Start ``deployment_id``; ``preempted`` lists the victims stopped to make room for it
    (empty when it fitted in free room)."""

    deployment_id: int
    preempted: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Preemption:
    victim_id: int
    preemptor_id: int


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A deployment still waiting after the plan, in the order the scheduler considers them."""

    deployment_id: int
    position: int  # 1-based
    reason: str
    reserved: bool = False  # holds a starvation reservation


@dataclass(frozen=True, slots=True)
class Plan:
    starts: tuple[Start, ...]
    preemptions: tuple[Preemption, ...]
    queue: tuple[QueueEntry, ...]

    @property
    def changed(self) -> bool:
        return bool(self.starts or self.preemptions)


def is_starving(queued_at: datetime, snapshot: ClusterSnapshot) -> bool:
    """Whether a deployment queued at ``queued_at`` holds a starvation reservation."""
    limit = snapshot.starvation_after_seconds
    return limit is not None and snapshot.now - queued_at > timedelta(seconds=limit)
