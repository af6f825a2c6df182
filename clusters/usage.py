"""How much of a cluster is allocated, per dimension, in words and percentages.

Presentation only (the admin's bars and the pages' bars share it); the numbers come
from the cluster row, which the scheduler keeps equal to the running set.
"""

from __future__ import annotations

from dataclasses import dataclass

from clusters.models import Cluster
from hypervisor.resources import DIMENSIONS


@dataclass(frozen=True)
class Usage:
    """One dimension of a cluster: allocated versus capacity."""

    dimension: str
    allocated: int
    capacity: int
    allocated_text: str
    capacity_text: str

    @property
    def percent(self) -> int:
        if self.capacity <= 0:
            return 0
        return min(100, round(100 * self.allocated / self.capacity))

    @property
    def level(self) -> str:
        """`full` from 90 %, `high` from 70 %, else `ok`: the bar's colour."""
        if self.capacity > 0 and self.percent >= 90:
            return "full"
        return "high" if self.percent >= 70 else "ok"

    @property
    def summary(self) -> str:
        if self.capacity <= 0:
            return f"{self.dimension}: none in this cluster"
        return (
            f"{self.dimension}: {self.allocated_text} of {self.capacity_text} allocated "
            f"({self.percent}%)"
        )


def cluster_usage(cluster: Cluster) -> list[Usage]:
    """Every dimension of a cluster, in the registry's order."""
    return [
        Usage(
            d.label,
            allocated,
            capacity,
            d.readable(allocated),
            d.of_capacity(capacity),
        )
        for d, allocated, capacity in zip(
            DIMENSIONS, cluster.allocated, cluster.capacity, strict=True
        )
    ]
