"""The one protocol every backend speaks, and the plain values it speaks in.

A backend is pure engine I/O: it starts, stops, inspects, reads the logs of and lists
*workloads* (a container, a domain, a batch job) described by a `WorkloadSpec`. It knows
nothing of deployments, clusters or the database; its callers name workloads and choose
their labels. Every operation is idempotent: starting a workload that exists returns it,
stopping or removing one that is gone does nothing.

Errors are of two kinds, because the callers treat them differently:
- `RuntimeUnavailable`: the engine could not be reached or answered with a transient
  error. Retried with backoff; counted by the runtime's circuit breaker.
- `WorkloadRejected`: the engine answered and refused (an image that does not exist, an
  invalid request). Retrying cannot help: the workload fails for good with this message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class RuntimeUnavailable(Exception):
    """The engine cannot be reached now (or answered with a transient error)."""


class WorkloadRejected(Exception):
    """The engine refused the request; the same request will be refused again."""


class Phase(StrEnum):
    CREATED = "created"  # exists, not started yet (or starting)
    # Accepted into the engine's own queue, where it waits for the engine to place it: it
    # holds nothing on a node yet (a Slurm job PENDING). Not a confirmed start.
    QUEUED = "queued"
    RUNNING = "running"
    EXITED = "exited"  # ended on its own or was stopped: exit_code says how
    MISSING = "missing"  # the engine has no such workload


@dataclass(frozen=True)
class WorkloadSpec:
    """What to run. `cpu_millicores`, `ram_mb` and `gpu` are limits, not hints."""

    name: str
    image: str
    labels: dict[str, str]
    command: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    cpu_millicores: int = 0
    ram_mb: int = 0
    gpu: int = 0


@dataclass(frozen=True)
class WorkloadState:
    """What the engine says of a workload now."""

    phase: Phase
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""  # the engine's own words when it could not run the workload
    waits_for: str = ""  # queued: the engine's words for why it waits (Slurm's Reason)

    @property
    def ended(self) -> bool:
        return self.phase == Phase.EXITED


MISSING = WorkloadState(Phase.MISSING)
# Exists and has not ended: runs, or will run without anyone asking again.
ALIVE = frozenset({Phase.CREATED, Phase.QUEUED, Phase.RUNNING})


@dataclass(frozen=True)
class Workload:
    """A labelled workload as `list_workloads` finds it."""

    name: str
    labels: dict[str, str]
    state: WorkloadState


class Backend(Protocol):
    """Engine I/O for one runtime. Implementations: `DockerBackend`, `LibvirtBackend`,
    `SlurmBackend`."""

    # Whether the engine has a queue of its own, so that `start` may answer `queued`.
    queues: bool

    def ping(self) -> None:
        """Raise `RuntimeUnavailable` unless the engine answers."""

    def start(self, spec: WorkloadSpec) -> WorkloadState:
        """Create and start the workload named `spec.name`, or return the one that exists.
        `queued` when the engine took it into its own queue without running it yet."""

    def stop(self, name: str, *, grace_seconds: float) -> WorkloadState:
        """Ask the workload to stop, kill it after `grace_seconds`; gone is fine."""

    def state(self, name: str) -> WorkloadState:
        """The workload's phase and, once it exited, its exit code."""

    def logs(self, name: str, *, tail: int) -> list[str]:
        """The last `tail` lines of the workload's output (stdout and stderr)."""

    def remove(self, name: str) -> None:
        """Delete the workload (it must have stopped); gone is fine."""

    def list_workloads(self, *, labels: dict[str, str]) -> list[Workload]:
        """Every workload carrying all of `labels` (e.g. this installation's label)."""
