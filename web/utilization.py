"""How much of a cluster is allocated, per dimension, in words and percentages.

Presentation only (the admin's bars and the pages' bars share it); the numbers come
from the cluster row, which the scheduler keeps equal to the running set.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from clusters.models import Cluster


def format_cpu(millicores: int) -> str:
    """`2500` -> `"2.5"` (cores, at most 3 decimals, no trailing zeros)."""
    cores = Decimal(millicores) / 1000
    return f"{cores.normalize():f}"


def format_ram(ram_mb: int) -> str:
    """MiB as people read it: `512 MiB`, `1.5 GiB`, `2 TiB`."""
    for unit, size in (("TiB", 1024 * 1024), ("GiB", 1024)):
        if ram_mb >= size:
            value = Decimal(ram_mb) / size
            return f"{value.quantize(Decimal('0.1')).normalize():f} {unit}"
    return f"{ram_mb} MiB"


def format_resources(cpu: int, ram_mb: int, gpu: int) -> str:
    """A request or capacity in one line: `2.5 CPU · 4 GiB · 1 GPU`."""
    return f"{format_cpu(cpu)} CPU · {format_ram(ram_mb)} · {gpu} GPU"


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
    """CPU, RAM and GPU of a cluster, in that order."""
    return [
        Usage(
            "CPU",
            cluster.allocated_cpu,
            cluster.capacity_cpu,
            format_cpu(cluster.allocated_cpu),
            f"{format_cpu(cluster.capacity_cpu)} cores",
        ),
        Usage(
            "RAM",
            cluster.allocated_ram_mb,
            cluster.capacity_ram_mb,
            format_ram(cluster.allocated_ram_mb),
            format_ram(cluster.capacity_ram_mb),
        ),
        Usage(
            "GPU",
            cluster.allocated_gpu,
            cluster.capacity_gpu,
            str(cluster.allocated_gpu),
            str(cluster.capacity_gpu),
        ),
    ]
