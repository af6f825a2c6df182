"""Reads for operations: the cluster gauges and the readiness checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q

from clusters.models import Cluster
from deployments.models import Status
from hypervisor.resources import DIMENSIONS, Dimension
from runtime.gateway import breaker_state
from runtime.models import Health, Runtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterGauges:
    cluster_id: int
    name: str
    organization_id: int
    resources: dict[str, tuple[float, float]]  # resource -> (capacity, allocated), API units
    running: int
    pending: int
    queued: int


@dataclass(frozen=True)
class RuntimeGauges:
    name: str
    kind: str
    reachable: bool
    status_since: float  # Unix time
    breaker_open: bool


def runtime_gauges() -> list[RuntimeGauges]:
    """Every runtime's recorded status and its breaker's state (shared through Redis)."""
    return [
        RuntimeGauges(
            name=runtime.name,
            kind=runtime.kind,
            reachable=runtime.status == Health.OK,
            status_since=runtime.status_since.timestamp(),
            breaker_open=breaker_state(runtime) == "open",
        )
        for runtime in Runtime.objects.order_by("name")
    ]


def cluster_gauges() -> list[ClusterGauges]:
    """Every cluster's capacity, allocation and counts, in one query."""
    rows = Cluster.objects.annotate(
        n_running=Count("deployments", filter=Q(deployments__status=Status.RUNNING)),
        n_pending=Count("deployments", filter=Q(deployments__status=Status.PENDING)),
        n_queued=Count("deployments", filter=Q(deployments__status=Status.QUEUED)),
    ).order_by("pk")
    return [
        ClusterGauges(
            cluster_id=c.pk,
            name=c.name,
            organization_id=c.organization_id,
            resources={
                d.api_field: (_in_api_units(d, cap), _in_api_units(d, alloc))
                for d, cap, alloc in zip(DIMENSIONS, c.capacity, c.allocated, strict=True)
            },
            running=c.n_running,
            pending=c.n_pending,
            queued=c.n_queued,
        )
        for c in rows
    ]


def _in_api_units(dimension: Dimension, value: int) -> float | int:
    """What the API shows: cores for CPU (a float), else the stored integer."""
    return float(Decimal(value) / dimension.scale) if dimension.scale != 1 else value


def readiness() -> dict[str, str]:
    """Each dependency this process needs, with "ok" or what is wrong with it."""
    checks = {"database": _check_database()}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis()
    return checks


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        logger.warning("readiness: database unreachable", exc_info=True)
        # A broken pooled connection would fail every later request too: drop it.
        connection.close_if_unusable_or_obsolete()
        return f"unreachable ({type(error).__name__})"
    return "ok"


_redis_client = None


def _check_redis() -> str:
    global _redis_client
    import redis

    try:
        if _redis_client is None:
            _redis_client = redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
            )
        _redis_client.ping()
    except Exception as error:
        logger.warning("readiness: redis unreachable", exc_info=True)
        return f"unreachable ({type(error).__name__})"
    return "ok"
