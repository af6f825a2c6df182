"""Resource vectors: what a deployment requests and a cluster has.

A leaf module: no Django import, so models, the planner and the pages all build on it.
Units are exact integers: CPU in millicores, RAM in MiB, GPUs as whole devices.
"""

from __future__ import annotations

from dataclasses import dataclass


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
