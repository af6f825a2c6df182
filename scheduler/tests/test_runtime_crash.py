"""dockerd killed while a start is in flight, deterministically, at two points:

- the engine has carried out the start and the service still waits for the answer (a
  proxy in front of the engine's socket keeps the answer; runtime/tests/engines.py):
  dockerd and its containerd are SIGKILLed, and restarted;
- containerd has created the container's task and its start has not reached runc (a
  runc wrapper holds `runc start`): dockerd (and with it its containerd) is SIGKILLed;
  the task lives on in its shim, and the next containerd finds it again."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connection

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, Status
from deployments.services import (
    Action,
    DependencySpec,
    DeploymentSpec,
    deployment_act,
    deployment_create,
)
from deployments.workloads import DEPLOYMENT_LABEL, workload_name
from hypervisor.resources import Resources
from runtime.gateway import forget_breakers
from runtime.labels import INSTALLATION_LABEL, installation_id
from runtime.services import RuntimeSpec, runtime_add
from runtime.tests.engines import DockerEngine, EngineProxy
from scheduler.lifecycle import reconcile_runtime
from scheduler.runtimeaudit import audit_runtimes
from scheduler.runtimework import run_runtime_work
from scheduler.tests.test_runtime_lifecycle import submit

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.RUNTIME_RETRY_WAIT_SECONDS = 0.01
    settings.RUNTIME_RETRY_ATTEMPTS = 2
    settings.HYPERVISOR_INSTALLATION_ID = f"t{uuid.uuid4().hex[:8]}"


def poll(condition: Callable[[], T], what: str, timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.02)
    return value


def cluster_on_engine(endpoint: str) -> Cluster:
    runtime = runtime_add(
        spec=RuntimeSpec(
            name=f"crash-{uuid.uuid4().hex[:6]}",
            kind="docker",
            endpoint=endpoint,
            options={"network": "none", "pull": "never"},
            credentials={},
        )
    )
    cluster = ClusterFactory(capacity_cpu=8000, capacity_ram_mb=4096, capacity_gpu=0)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
    cluster.refresh_from_db()
    return cluster


def test_dockerd_killed_while_a_start_is_in_flight(tmp_path_factory, settings):
    engine = DockerEngine(tmp_path_factory.mktemp("dockerd-midstart"))
    engine.start()
    proxy = EngineProxy(engine.directory, engine.socket)
    try:
        engine.build_test_image()
        cluster = cluster_on_engine(proxy.endpoint)
        runtime = cluster.runtime
        before = [submit(cluster, ["sleep", "60"], name=f"before{i}") for i in range(2)]
        client = engine.client()
        label = f"{INSTALLATION_LABEL}={installation_id()}"

        def labelled(**filters) -> list:
            return client.containers.list(all=True, filters={"label": label, **filters})

        # Four wait on a gate (a manual cluster's deployment): completing it lets one
        # pass place all four and one drive start them, in order.
        gate = deployment_create(
            actor=UserFactory(),
            cluster=ClusterFactory(organization=cluster.organization),
            spec=DeploymentSpec(name="gate", image="busybox", resources=Resources(0, 0, 0)),
        )
        after_gate = (DependencySpec(deployment_id=gate.pk),)
        during = [
            submit(cluster, ["sleep", "60"], name=f"d{i}", depends_on=after_gate) for i in range(4)
        ]
        proxy.hold_next_start()

        def open_the_gate() -> None:
            try:
                deployment_act(actor=gate.created_by, deployment_id=gate.pk, action=Action.COMPLETE)
            finally:
                connection.close()

        submitter = threading.Thread(target=open_the_gate)
        submitter.start()
        held = poll(lambda: proxy.held, "the engine answered the first start, unheard")
        # The state at the kill: the engine has started the first container; the service
        # still waits for the answer; the three others were not asked for yet.
        assert submitter.is_alive()
        [first, *others] = during
        started = client.containers.get(held)  # the proxy saw its id
        assert (started.name, started.status) == (workload_name(first.pk), "running")
        starting = Deployment.objects.filter(pk__in=[d.pk for d in during])
        assert set(starting.values_list("status", flat=True)) == {Status.STARTING}
        assert not any(labelled(name=workload_name(d.pk)) for d in others)
        engine.kill()
        submitter.join(timeout=60)
        assert not submitter.is_alive()
        # The call in flight failed: all four keep their status and room, and say why.
        for deployment in starting:
            assert deployment.status == Status.STARTING
            assert "unreachable" in deployment.status_reason, deployment.status_reason

        engine.start()
        client = engine.client()
        settings.RUNTIME_BREAKER_RESET_SECONDS = 0
        forget_breakers()
        run_runtime_work(cluster_id=cluster.pk)
        reconcile_runtime(runtime_id=runtime.pk)

        final = {d.pk: Deployment.objects.get(pk=d.pk) for d in [*before, *during]}
        outcome = {d.pk: (final[d.pk].status, final[d.pk].exit_code) for d in final.values()}
        # A dockerd without live-restore stops, when it starts again, what ran at its
        # crash (exit 137): the two that ran before, and the first, which the engine had
        # started. The retried start of the first found that container and left it ended
        # (a second one would be running now); the three never started run.
        assert [outcome[d.pk] for d in [*before, first]] == [(Status.FAILED, 137)] * 3, outcome
        assert final[first.pk].status_reason == "exited with code 137"
        assert [outcome[d.pk] for d in others] == [(Status.RUNNING, None)] * 3, outcome
        containers = labelled()
        per_deployment = Counter(c.labels[DEPLOYMENT_LABEL] for c in containers)
        assert max(per_deployment.values()) == 1, per_deployment
        running = sorted(workload_name(d.pk) for d in final.values() if d.status == Status.RUNNING)
        assert sorted(c.name for c in labelled(status="running")) == running
        assert sorted(c.name for c in containers) == running
        assert audit_runtimes() == []
    finally:
        proxy.close()
        engine.stop()


def test_dockerd_killed_after_containerd_created_the_task(tmp_path_factory, settings, caplog):
    engine = DockerEngine(tmp_path_factory.mktemp("dockerd-task"), gated=True)
    engine.start()
    try:
        engine.build_test_image()
        cluster = cluster_on_engine(engine.endpoint)
        engine.close_gate()
        submitted: list[Deployment] = []

        def start_one() -> None:
            try:
                submitted.append(submit(cluster, ["sleep", "60"]))
            finally:
                connection.close()

        submitter = threading.Thread(target=start_one)
        submitter.start()
        stale = poll(engine.gate_waiting, "the task created, its start waiting")
        engine.kill()
        submitter.join(timeout=60)
        assert not submitter.is_alive()
        [deployment] = submitted
        deployment.refresh_from_db()
        assert deployment.status == Status.STARTING
        # The start that dockerd had asked for never happens; the task stays created.
        engine.open_gate()
        poll(engine.gated_start_over, "the gated start over")
        engine.start()
        settings.RUNTIME_BREAKER_RESET_SECONDS = 0
        forget_breakers()
        run_runtime_work(cluster_id=cluster.pk)

        deployment.refresh_from_db()
        # dockerd 20.10 answers every start of that container "task ...: already exists"
        # (moby/moby#44399); it never ran, so the backend replaced it.
        assert deployment.status == Status.RUNNING, deployment.status_reason
        [container] = engine.client().containers.list(all=True)
        assert container.name == workload_name(deployment.pk)
        assert container.id != stale and container.status == "running"
        assert "replacing a container whose start the engine cannot finish" in caplog.text
        assert audit_runtimes() == []
    finally:
        engine.stop()
