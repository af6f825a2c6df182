"""Prometheus metrics: cluster gauges read from the database at scrape time, and the
scheduler's own counters and histograms observed after every pass.

Multiprocess mode: gunicorn runs several worker processes and RQ forks a work horse per
job, so with `PROMETHEUS_MULTIPROC_DIR` set (an empty directory, shared by every process
of one host or container) each process writes its samples to files there and a scrape
merges them. Files are named by a process identifier: `<hostname>-<pid>`, except in an
RQ work horse, which uses its worker's id. A worker runs one horse at a time, so horses
take turns on one file instead of leaving a new file per job behind them.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from hypervisor.resources import DIMENSIONS

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
_IMPORT_PID = os.getpid()


def _process_identifier() -> str:
    worker_id = os.environ.get("RQ_WORKER_ID")
    if worker_id and os.getpid() != _IMPORT_PID:
        return f"rqhorse-{worker_id}".replace("_", "-")
    return f"{socket.gethostname()}-{os.getpid()}".replace("_", "-")


if MULTIPROC_DIR:
    # Must happen before any metric below is created: they take the value class then.
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)

from prometheus_client import Counter, Histogram  # noqa: E402  (after the value class)


@dataclass(frozen=True)
class SchedulerMetrics:
    pass_seconds: Histogram
    starts: Counter
    preemptions: Counter
    queue_wait_seconds: Histogram

    def all(self) -> tuple:
        return (self.pass_seconds, self.starts, self.preemptions, self.queue_wait_seconds)


@functools.cache
def scheduler_metrics() -> SchedulerMetrics:
    """Created on first use, so that only processes that run passes (gunicorn workers in
    the embedded mode, RQ work horses) open files in the multiprocess directory, not
    every `manage.py` command or health probe."""
    return SchedulerMetrics(
        pass_seconds=Histogram(
            "hypervisor_scheduling_pass_seconds",
            "Duration of a scheduling pass over one cluster (lock, plan, apply, commit).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=None,
        ),
        starts=Counter(
            "hypervisor_deployment_starts",
            "Deployments started by the scheduler.",
            registry=None,
        ),
        preemptions=Counter(
            "hypervisor_deployment_preemptions",
            "Running deployments preempted (sent back to the queue) by the scheduler.",
            registry=None,
        ),
        queue_wait_seconds=Histogram(
            "hypervisor_queue_wait_seconds",
            "Time from queued_at to start, observed when a deployment starts, per priority.",
            ["priority"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400),
            registry=None,
        ),
    )


def observe_pass(sender, *, result, seconds: float, **kwargs) -> None:
    """Receiver of `scheduler.services.pass_finished`: sent after a pass commits."""
    metrics = scheduler_metrics()
    metrics.pass_seconds.observe(seconds)
    if result.started:
        metrics.starts.inc(len(result.started))
    if result.preempted:
        metrics.preemptions.inc(len(result.preempted))
    for priority, waited in result.waits:
        metrics.queue_wait_seconds.labels(priority=str(priority)).observe(max(0.0, waited))


class ClusterCollector(Collector):
    """Per-cluster gauges, computed at scrape time from the database in one query."""

    def describe(self) -> list:
        return []  # the families depend on the data; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from ops.selectors import cluster_gauges

        labels = ["cluster_id", "cluster", "organization_id"]
        capacity = GaugeMetricFamily(
            "hypervisor_cluster_capacity",
            f"Cluster capacity ({', '.join(f'{d.api_field} in {d.unit}' for d in DIMENSIONS)}).",
            labels=[*labels, "resource"],
        )
        allocated = GaugeMetricFamily(
            "hypervisor_cluster_allocated",
            "Sum of the requests of the cluster's running deployments (same units).",
            labels=[*labels, "resource"],
        )
        running = GaugeMetricFamily(
            "hypervisor_cluster_running_deployments", "Running deployments.", labels=labels
        )
        waiting = GaugeMetricFamily(
            "hypervisor_cluster_waiting_deployments",
            "Waiting deployments: pending (dependencies) or queued (resources).",
            labels=[*labels, "status"],
        )
        for row in cluster_gauges():
            ids = [str(row.cluster_id), row.name, str(row.organization_id)]
            for resource, (cap, alloc) in row.resources.items():
                capacity.add_metric([*ids, resource], cap)
                allocated.add_metric([*ids, resource], alloc)
            running.add_metric(ids, row.running)
            waiting.add_metric([*ids, "pending"], row.pending)
            waiting.add_metric([*ids, "queued"], row.queued)
        yield from (capacity, allocated, running, waiting)


class RuntimeCollector(Collector):
    """Each runtime's reachability and circuit breaker (runtime.gateway), at scrape time."""

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from ops.selectors import runtime_gauges  # like ClusterCollector: after Django's setup

        labels = ["runtime", "kind"]
        up = GaugeMetricFamily(
            "hypervisor_runtime_up",
            "1 when the last calls reached the runtime, 0 while it is unreachable.",
            labels=labels,
        )
        since = GaugeMetricFamily(
            "hypervisor_runtime_status_since_seconds",
            "Unix time of the runtime's last status change.",
            labels=labels,
        )
        breaker = GaugeMetricFamily(
            "hypervisor_runtime_breaker_open",
            "1 while the runtime's circuit breaker is open (calls paused), else 0.",
            labels=labels,
        )
        for row in runtime_gauges():
            ids = [row.name, row.kind]
            up.add_metric(ids, 1 if row.reachable else 0)
            since.add_metric(ids, row.status_since)
            breaker.add_metric(ids, 1 if row.breaker_open else 0)
        yield from (up, since, breaker)


class QueueCollector(Collector):
    """Jobs waiting in each RQ queue (with REDIS_URL): a growing queue means the
    workers do not keep up. Redis being down is /readyz's business, not a scrape error."""

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import django_rq
        from django.conf import settings
        from redis.exceptions import RedisError

        family = GaugeMetricFamily(
            "hypervisor_rq_queue_jobs", "Jobs waiting in the RQ queue.", labels=["queue"]
        )
        for name in settings.RQ_QUEUES:
            try:
                family.add_metric([name], django_rq.get_queue(name).count)
            except RedisError:
                continue
        yield family


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: this host's processes' samples plus the cluster gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in scheduler_metrics().all():
            registry.register(metric)
    registry.register(ClusterCollector())
    registry.register(RuntimeCollector())
    from django.conf import settings

    if settings.REDIS_URL:
        registry.register(QueueCollector())
    return registry
