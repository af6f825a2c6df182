"""Deployments that actually run: the lifecycle on a real dockerd, in-process (embedded).

Each test creates deployments through the services, as the API does; the pass and the
runtime work run after each commit, in-process; exits are noticed by reconciliation,
called here where the watcher (RUNTIME_WATCH_SECONDS) would call it.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, DeploymentLog, Status
from deployments.services import (
    Action,
    DependencySpec,
    DeploymentSpec,
    deployment_act,
    deployment_create,
)
from deployments.workloads import workload_name
from hypervisor.resources import Resources
from runtime.gateway import forget_breakers
from runtime.labels import INSTALLATION_LABEL, installation_id
from runtime.models import Runtime
from runtime.services import RuntimeSpec, runtime_add
from runtime.tests.engines import TEST_IMAGE, DockerEngine
from scheduler.lifecycle import reconcile_runtime
from scheduler.runtimeaudit import audit_runtimes
from scheduler.runtimework import run_runtime_work

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.RUNTIME_STOP_GRACE_SECONDS = 1
    settings.RUNTIME_RETRY_WAIT_SECONDS = 0.01
    settings.RUNTIME_RETRY_ATTEMPTS = 2
    settings.HYPERVISOR_INSTALLATION_ID = f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def runtime(docker_engine) -> Runtime:
    runtime = runtime_add(
        spec=RuntimeSpec(
            name=f"dk-{uuid.uuid4().hex[:6]}",
            kind="docker",
            endpoint=docker_engine.endpoint,
            options={"network": "none", "pull": "never"},
            credentials={},
        )
    )
    yield runtime
    client = docker_engine.client()
    label = f"{INSTALLATION_LABEL}={installation_id()}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)


@pytest.fixture
def cluster(runtime) -> Cluster:
    cluster = ClusterFactory(capacity_cpu=2000, capacity_ram_mb=512, capacity_gpu=0)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
    cluster.refresh_from_db()
    return cluster


def submit(cluster: Cluster, command: list[str], **fields) -> Deployment:
    spec = DeploymentSpec(
        name=fields.pop("name", "job"),
        image=fields.pop("image", TEST_IMAGE),
        resources=fields.pop("resources", Resources(500, 64, 0)),
        command=command,
        **fields,
    )
    return deployment_create(actor=UserFactory(), cluster=cluster, spec=spec)


def settle(deployment: Deployment, statuses: set[str], timeout: float = 20) -> Deployment:
    """Reconcile (as the watcher would) until the deployment reaches one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        deployment.refresh_from_db()
        if deployment.status in statuses or time.monotonic() > deadline:
            return deployment
        reconcile_runtime(runtime_id=deployment.cluster.runtime_id)
        time.sleep(0.1)


def containers(docker_engine, deployment: Deployment) -> list:
    return docker_engine.client().containers.list(
        all=True, filters={"name": workload_name(deployment.pk)}
    )


def test_a_deployment_runs_and_its_exit_0_completes_it(cluster, docker_engine):
    deployment = submit(cluster, ["sh", "-c", "echo hello from the workload; sleep 1"])
    deployment.refresh_from_db()
    # Embedded: the pass and the start ran after the create's commit.
    assert deployment.status == Status.RUNNING
    assert deployment.status_reason.startswith("running on runtime")
    assert len(containers(docker_engine, deployment)) == 1
    deployment = settle(deployment, {Status.COMPLETED, Status.FAILED})
    assert (deployment.status, deployment.exit_code) == (Status.COMPLETED, 0)
    assert deployment.status_reason == "exited with code 0"
    assert DeploymentLog.objects.get(deployment=deployment).lines == ["hello from the workload"]
    assert containers(docker_engine, deployment) == []
    cluster.refresh_from_db()
    assert cluster.allocated == Resources(0, 0, 0)
    statuses = [e.to_status for e in deployment.events.order_by("at", "id")]
    assert statuses == ["queued", "starting", "running", "completed"]


def test_exit_3_fails_it_with_the_code(cluster):
    deployment = settle(submit(cluster, ["sh", "-c", "exit 3"]), {Status.FAILED})
    assert (deployment.status, deployment.exit_code) == (Status.FAILED, 3)
    assert deployment.status_reason == "exited with code 3"


def test_an_out_of_memory_kill_is_named(cluster):
    deployment = submit(cluster, ["tail", "/dev/zero"], resources=Resources(500, 16, 0))
    deployment = settle(deployment, {Status.FAILED})
    assert deployment.status_reason == "killed: out of memory"
    assert deployment.exit_code == 137


def test_an_image_that_does_not_exist_fails_with_the_engines_words(cluster, docker_engine):
    deployment = submit(cluster, None, image="registry.invalid/team/nothing:1")
    deployment.refresh_from_db()
    assert deployment.status == Status.FAILED
    assert deployment.status_reason.startswith("the runtime could not start it: ")
    assert "No such image" in deployment.status_reason
    assert containers(docker_engine, deployment) == []
    cluster.refresh_from_db()
    assert cluster.allocated == Resources(0, 0, 0)


def test_cancel_while_running_stops_then_releases(cluster, docker_engine):
    # TERM ignored by PID 1: only the kill after the grace period ends it.
    deployment = submit(cluster, ["sh", "-c", 'trap "" TERM; while true; do sleep 0.1; done'])
    began = time.monotonic()
    deployment_act(actor=deployment.created_by, deployment_id=deployment.pk, action=Action.CANCEL)
    deployment.refresh_from_db()
    assert time.monotonic() - began >= 1  # the grace period
    assert deployment.status == Status.CANCELLED
    events = [(e.from_status, e.to_status) for e in deployment.events.order_by("at", "id")]
    assert events[-2:] == [("running", "stopping"), ("stopping", "cancelled")]
    assert "killed by the runtime after the 1 s grace period" in deployment.events.last().reason
    assert containers(docker_engine, deployment) == []


def test_cancel_while_starting(cluster, runtime, docker_engine):
    # The runtime is down when the pass places it: it stays starting, holding room.
    Runtime.objects.filter(pk=runtime.pk).update(endpoint="unix:///nonexistent/docker.sock")
    deployment = submit(cluster, ["sleep", "30"])
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTING
    assert "unreachable" in deployment.status_reason
    deployment_act(actor=deployment.created_by, deployment_id=deployment.pk, action=Action.CANCEL)
    deployment.refresh_from_db()
    assert deployment.status == Status.STOPPING  # the runtime must confirm: it is down
    Runtime.objects.filter(pk=runtime.pk).update(endpoint=docker_engine.endpoint)
    run_runtime_work(cluster_id=cluster.pk)
    deployment.refresh_from_db()
    assert deployment.status == Status.CANCELLED
    assert containers(docker_engine, deployment) == []


def test_the_victim_is_stopped_before_the_preemptor_starts(cluster, docker_engine):
    low = submit(
        cluster,
        ["sh", "-c", 'trap "" TERM; while true; do sleep 0.1; done'],
        resources=Resources(2000, 64, 0),
    )
    high = submit(cluster, ["sleep", "30"], resources=Resources(2000, 64, 0), priority=10)
    low.refresh_from_db()
    high.refresh_from_db()
    assert low.status == Status.QUEUED and low.preemption_count == 1
    assert high.status == Status.RUNNING
    stopped_at = low.events.get(from_status="stopping").at
    started_at = high.events.get(to_status="starting").at
    assert stopped_at <= started_at
    # The engine ran them one after the other, never both at once.
    high_container = docker_engine.client().api.inspect_container(workload_name(high.pk))
    assert high_container["State"]["Running"]
    assert containers(docker_engine, low) == []


def test_a_start_planned_into_a_victims_room_waits_for_the_stop(cluster, docker_engine):
    # One pass places two: `first` by preempting `low` (2 CPUs), and `second` into the CPU
    # that `low`'s stop leaves over. `low` holds its room until the runtime confirms the
    # stop, so `second` must wait for it too (it once started at once, and the pass broke
    # on the database's capacity CHECK: 3 CPUs held of 2).
    gate = ClusterFactory(organization=cluster.organization)  # manual: runs at once
    dependency = deployment_create(
        actor=UserFactory(),
        cluster=gate,
        spec=DeploymentSpec(name="gate", image="busybox", resources=Resources(0, 0, 0)),
    )
    low = submit(
        cluster,
        ["sh", "-c", 'trap "" TERM; while true; do sleep 0.1; done'],
        resources=Resources(2000, 64, 0),
    )
    after_gate = (DependencySpec(deployment_id=dependency.pk),)
    first, second = (
        submit(
            cluster,
            ["sleep", "30"],
            resources=Resources(1000, 64, 0),
            priority=10,
            depends_on=after_gate,
            name=name,
        )
        for name in ("first", "second")
    )
    deployment_act(actor=dependency.created_by, deployment_id=dependency.pk, action=Action.COMPLETE)
    for deployment in (low, first, second):
        deployment.refresh_from_db()
    assert (low.status, low.preemption_count) == (Status.QUEUED, 1)
    assert first.status == second.status == Status.RUNNING
    stopped_at = low.events.get(from_status="stopping").at
    assert stopped_at <= min(d.events.get(to_status="starting").at for d in (first, second))
    cluster.refresh_from_db()
    assert cluster.allocated == Resources(2000, 128, 0)


def test_a_container_removed_behind_our_back_is_lost(cluster, docker_engine):
    deployment = submit(cluster, ["sleep", "30"])
    [container] = containers(docker_engine, deployment)
    container.remove(force=True)
    deployment = settle(deployment, {Status.FAILED})
    assert deployment.status_reason == "lost by the runtime: its workload vanished"


def test_orphans_are_removed_and_foreign_workloads_left_alone(cluster, runtime, docker_engine):
    client = docker_engine.client()
    ours = {INSTALLATION_LABEL: installation_id(), "io.hypervisor.deployment": "999999"}
    theirs = {INSTALLATION_LABEL: "another-installation", "io.hypervisor.deployment": "1"}
    orphan = client.containers.run(
        TEST_IMAGE, ["sleep", "30"], labels=ours, detach=True, network_mode="none"
    )
    foreign = client.containers.run(
        TEST_IMAGE, ["sleep", "30"], labels=theirs, detach=True, network_mode="none"
    )
    unlabelled = client.containers.run(
        TEST_IMAGE, ["sleep", "30"], detach=True, network_mode="none"
    )
    try:
        result = reconcile_runtime(runtime_id=runtime.pk)
        assert result.orphans_removed == [orphan.name]
        names = {c.name for c in client.containers.list(all=True)}
        assert orphan.name not in names
        assert {foreign.name, unlabelled.name} <= names
    finally:
        foreign.remove(force=True)
        unlabelled.remove(force=True)


def test_an_unreachable_runtime_starts_nothing_new_and_says_why(cluster, runtime):
    Runtime.objects.filter(pk=runtime.pk).update(endpoint="unix:///nonexistent/docker.sock")
    first = submit(cluster, ["sleep", "30"])
    runtime.refresh_from_db()
    assert runtime.status == "unreachable"
    second = submit(cluster, ["sleep", "30"])
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Status.STARTING  # placed before anyone knew: it keeps its room
    assert second.status == Status.QUEUED
    assert f"runtime {runtime.name} is unreachable since" in second.status_reason


def test_the_audit_compares_the_runtime_with_the_database(cluster, runtime, docker_engine):
    deployment = submit(cluster, ["sleep", "30"])
    assert audit_runtimes() == []
    stray = docker_engine.client().containers.run(
        TEST_IMAGE,
        ["sleep", "30"],
        labels={INSTALLATION_LABEL: installation_id(), "io.hypervisor.deployment": "424242"},
        detach=True,
        network_mode="none",
    )
    try:
        [violation] = audit_runtimes()
        assert (violation.guarantee, violation.deployment_id) == ("runtime", 424242)
        assert "without holding room" in violation.message
    finally:
        stray.remove(force=True)
    deployment.refresh_from_db()
    assert deployment.status == Status.RUNNING


def test_dockerd_killed_and_restarted_during_starts(tmp_path_factory, settings):
    """Nothing lost, no duplicate container, the audit clean once it answers again."""
    engine = DockerEngine(tmp_path_factory.mktemp("dockerd-crash"))
    engine.start()
    try:
        engine.build_test_image()
        runtime = runtime_add(
            spec=RuntimeSpec(
                name="crashing",
                kind="docker",
                endpoint=engine.endpoint,
                options={"network": "none", "pull": "never"},
                credentials={},
            )
        )
        cluster = ClusterFactory(capacity_cpu=8000, capacity_ram_mb=4096, capacity_gpu=0)
        Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
        cluster.refresh_from_db()
        # Killed between starts, not on a timer: a timer made the outcome depend on the
        # machine's speed (on a quiet one every start was over before it fired).
        deployments = [submit(cluster, ["sleep", "60"], name=f"d{i}") for i in range(4)]
        engine.kill()
        deployments += [submit(cluster, ["sleep", "60"], name=f"d{i}") for i in range(4, 12)]
        statuses = Counter(
            Deployment.objects.filter(cluster=cluster).values_list("status", flat=True)
        )
        # The first start after the kill was placed and failed (it holds room, starting);
        # the runtime is then unreachable and the rest wait, queued.
        assert statuses[Status.RUNNING] == 4 and statuses[Status.STARTING] >= 1, statuses
        engine.start()
        settings.RUNTIME_BREAKER_RESET_SECONDS = 0
        forget_breakers()
        run_runtime_work(cluster_id=cluster.pk)
        reconcile_runtime(runtime_id=runtime.pk)
        final = {d.pk: Deployment.objects.get(pk=d.pk) for d in deployments}
        # Every deployment is accounted for: running, or ended with a reason.
        assert all(d.status in {Status.RUNNING, Status.FAILED} for d in final.values()), [
            (d.status, d.status_reason) for d in final.values()
        ]
        names = [c.name for c in engine.client().containers.list(all=True)]
        assert len(names) == len(set(names))
        running = [d for d in final.values() if d.status == Status.RUNNING]
        assert sorted(names) == sorted(workload_name(d.pk) for d in running)
        assert audit_runtimes() == []
    finally:
        engine.stop()
