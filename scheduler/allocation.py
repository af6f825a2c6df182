"""The pure scheduling planner.

No ORM and no Django here: a ``ClusterSnapshot`` (capacity, running and waiting
deployments) goes in, a ``Plan`` (starts, preemptions, and the remaining queue with
a reason for each entry) comes out. ``scheduler.services`` builds the snapshot from
locked rows and applies the plan; the property tests, the benchmarks and the queue
endpoint call ``plan`` directly.

Units are exact integers: CPU in millicores, RAM in MiB, GPUs as whole devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Policy(StrEnum):
    FIFO = "fifo"
    PACK = "pack"


@dataclass(frozen=True, slots=True)
class Resources:
    """A resource vector: CPU in millicores, RAM in MiB, whole GPUs."""

    cpu: int = 0
    ram_mb: int = 0
    gpu: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.ram_mb + other.ram_mb, self.gpu + other.gpu)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.ram_mb - other.ram_mb, self.gpu - other.gpu)

    def fits_in(self, room: Resources) -> bool:
        """True when every dimension of ``self`` is at most that of ``room``."""
        return self.cpu <= room.cpu and self.ram_mb <= room.ram_mb and self.gpu <= room.gpu

    def shortfall(self, room: Resources) -> Resources:
        """What ``room`` lacks, per dimension, to hold ``self`` (never negative)."""
        return Resources(
            max(0, self.cpu - room.cpu),
            max(0, self.ram_mb - room.ram_mb),
            max(0, self.gpu - room.gpu),
        )


ZERO = Resources()


@dataclass(frozen=True, slots=True)
class RunningDeployment:
    id: int
    resources: Resources
    priority: int
    preemptible: bool
    started_at: datetime


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
    policy: Policy = Policy.FIFO
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
