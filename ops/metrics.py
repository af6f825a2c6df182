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

import os
import socket
from collections.abc import Iterator

from prometheus_client import values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

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

PASS_SECONDS = Histogram(
    "hypervisor_scheduling_pass_seconds",
    "Duration of a scheduling pass over one cluster (lock, plan, apply, commit).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)
STARTS = Counter(
    "hypervisor_deployment_starts",
    "Deployments started by the scheduler.",
    registry=None,
)
PREEMPTIONS = Counter(
    "hypervisor_deployment_preemptions",
    "Running deployments preempted (sent back to the queue) by the scheduler.",
    registry=None,
)
QUEUE_WAIT_SECONDS = Histogram(
    "hypervisor_queue_wait_seconds",
    "Time from queued_at to start, observed when a deployment starts, per priority.",
    ["priority"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600),
    registry=None,
)
PROCESS_LOCAL_METRICS = (PASS_SECONDS, STARTS, PREEMPTIONS, QUEUE_WAIT_SECONDS)


def observe_pass(sender, *, result, seconds: float, **kwargs) -> None:
    """Receiver of `scheduler.services.pass_finished`: sent after a pass commits."""
    PASS_SECONDS.observe(seconds)
    if result.started:
        STARTS.inc(len(result.started))
    if result.preempted:
        PREEMPTIONS.inc(len(result.preempted))
    for priority, waited in result.waits:
        QUEUE_WAIT_SECONDS.labels(priority=str(priority)).observe(max(0.0, waited))


class ClusterCollector(Collector):
    """Per-cluster gauges, computed at scrape time from the database in one query."""

    def describe(self) -> list:
        return []  # the families depend on the data; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from ops.selectors import cluster_gauges

        labels = ["cluster_id", "cluster", "organization_id"]
        capacity = GaugeMetricFamily(
            "hypervisor_cluster_capacity",
            "Cluster capacity (cpu in cores, ram_mb in MiB, gpu in devices).",
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


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: this host's processes' samples plus the cluster gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in PROCESS_LOCAL_METRICS:
            registry.register(metric)
    registry.register(ClusterCollector())
    return registry
