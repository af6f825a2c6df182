"""What running deployments on a real engine costs: create -> running, stop, reconcile.

Embedded mode (passes and runtime work in-process, after each commit), so a service
call returns when its outcome is committed: the create of a deployment that fits
returns once the engine confirmed its start, a cancel once the engine confirmed the
stop. The same calls on a manual cluster give the baseline.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from deployments.models import Deployment, Status
from deployments.selectors import deployment_logs
from deployments.services import Action, DeploymentSpec, deployment_act, deployment_create
from hypervisor.resources import Resources
from orgs.tests.factories import OrganizationFactory
from runtime.models import Runtime
from runtime.services import RuntimeSpec, runtime_add
from scheduler.lifecycle import reconcile_runtime

# Leaves at once on TERM: a graceful stop, no kill. It says `ready` once its trap is set:
# a TERM before that meets `sh` as PID 1 with no handler, which ignores it (a kill after
# the grace period, not a graceful stop).
LISTENS = ["sh", "-c", 'trap "exit 0" TERM; echo ready; while true; do sleep 0.1; done']
READY_TIMEOUT_SECONDS = 30
# A quarter of a CPU: at 10 millicores the container's own setup, which runs in its
# cgroup, got 1 ms of CPU per 100 ms and a start took 1.3 to 2.1 s instead of 0.2 s
# (docs/benchmarks.md): that measured the limit, not the service.
REQUEST = Resources(250, 16, 0)


@dataclass(frozen=True)
class Latencies:
    label: str
    seconds: list[float]

    def line(self) -> str:
        ordered = sorted(self.seconds)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return (
            f"{self.label}: n={len(ordered)} p50={statistics.median(ordered) * 1000:.1f} ms "
            f"p99={p99 * 1000:.1f} ms max={ordered[-1] * 1000:.1f} ms"
        )


class RuntimeBench:
    """One organization, one runtime cluster and one manual cluster, removed at the end."""

    def __init__(self, *, endpoint: str, image: str) -> None:
        self.image = image
        self.organization = OrganizationFactory(name=f"bench-{uuid.uuid4().hex[:6]}")
        self.actor = UserFactory()
        self.runtime = runtime_add(
            spec=RuntimeSpec(
                name=f"bench-{uuid.uuid4().hex[:6]}",
                kind="docker",
                endpoint=endpoint,
                options={"network": "none", "pull": "never"},
                credentials={},
            )
        )
        room = {"capacity_cpu": 1_000_000, "capacity_ram_mb": 1_000_000, "capacity_gpu": 0}
        self.docker = Cluster.objects.create(
            organization=self.organization, name="docker", runtime=self.runtime, **room
        )
        self.manual = Cluster.objects.create(organization=self.organization, name="manual", **room)

    def create(self, cluster: Cluster, command: list[str]) -> Deployment:
        spec = DeploymentSpec(name="bench", image=self.image, resources=REQUEST, command=command)
        return deployment_create(actor=self.actor, cluster=cluster, spec=spec)

    def timed(self, action: Callable[[], Deployment], expected: str) -> tuple[float, Deployment]:
        began = time.perf_counter()
        deployment = action()
        seconds = time.perf_counter() - began
        deployment.refresh_from_db()
        if deployment.status != expected:
            raise RuntimeError(
                f"{deployment.pk} is {deployment.status}: {deployment.status_reason}"
            )
        return seconds, deployment

    def start_and_stop(self, cluster: Cluster, count: int) -> tuple[Latencies, Latencies]:
        starts, stops = [], []
        for _ in range(count):
            seconds, deployment = self.timed(lambda: self.create(cluster, LISTENS), Status.RUNNING)
            starts.append(seconds)
            if cluster.runtime_id:
                _wait_until_ready(deployment)  # untimed: the workload's own start-up
            seconds, _ = self.timed(lambda d=deployment: self._cancel(d), Status.CANCELLED)
            stops.append(seconds)
        kind = "docker" if cluster.runtime_id else "manual"
        return (
            Latencies(f"create -> running ({kind})", starts),
            Latencies(f"cancel -> cancelled, graceful stop ({kind})", stops),
        )

    def _cancel(self, deployment: Deployment) -> Deployment:
        return deployment_act(actor=self.actor, deployment_id=deployment.pk, action=Action.CANCEL)

    def reconcile(self, workloads: int, rounds: int) -> Latencies:
        """Reconciliation of the runtime with `workloads` labelled running containers."""
        for _ in range(workloads):
            self.timed(lambda: self.create(self.docker, ["sleep", "3600"]), Status.RUNNING)
        seconds = []
        for _ in range(rounds):
            began = time.perf_counter()
            result = reconcile_runtime(runtime_id=self.runtime.pk)
            seconds.append(time.perf_counter() - began)
            if result.ended or result.lost or result.orphans_removed or result.unreachable:
                raise RuntimeError(f"reconciliation changed something: {result}")
        return Latencies(f"reconcile, {workloads} labelled containers", seconds)

    def clean_up(self) -> None:
        settings.RUNTIME_STOP_GRACE_SECONDS = 0  # `sleep` as PID 1 ignores TERM: kill at once
        for deployment in Deployment.objects.filter(cluster=self.docker, status=Status.RUNNING):
            self._cancel(deployment)
        self.organization.delete()
        Runtime.objects.filter(pk=self.runtime.pk).delete()
        self.actor.delete()


def _wait_until_ready(deployment: Deployment) -> None:
    """Poll the workload's output (the logs endpoint's own reader) for `ready`."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while "ready" not in deployment_logs(deployment=deployment, tail=5).lines:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{deployment.pk} never said ready")
        time.sleep(0.01)
