"""Deployments on a Slurm runtime: the lifecycle against the session's real Slurm,
in-process (embedded). Exits are noticed by reconciliation, called here where the watcher
would call it. What Slurm really runs is read from `squeue --json` itself."""

from __future__ import annotations

import random
import subprocess
import threading
import time
import uuid

import pytest
from django.db import connection

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, DeploymentLog, Status
from deployments.services import Action, DeploymentSpec, deployment_act, deployment_create
from deployments.workloads import workload_name
from hypervisor.resources import Resources
from runtime.gateway import gateway_for
from runtime.labels import installation_labels
from runtime.models import Runtime
from runtime.services import RuntimeSpec, runtime_add
from runtime.slurm.client import SlurmClient
from runtime.slurm.states import Phase
from scheduler.lifecycle import drive_cluster, reconcile_runtime
from scheduler.tests.test_runtime_lifecycle import settle

pytestmark = pytest.mark.django_db(transaction=True)
TERM_IGNORED = ["/bin/sh", "-c", 'trap "" TERM; echo ready; while :; do sleep 0.1; done']


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.RUNTIME_STOP_GRACE_SECONDS = 1
    settings.RUNTIME_RETRY_WAIT_SECONDS = 0.01
    settings.RUNTIME_RETRY_ATTEMPTS = 2
    settings.HYPERVISOR_INSTALLATION_ID = f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def runtime(slurm, tmp_path) -> Runtime:
    return runtime_add(
        spec=RuntimeSpec(
            name=f"hpc-{uuid.uuid4().hex[:6]}",
            kind="slurm",
            endpoint=str(slurm.conf),
            options={"partition": slurm.partition, "output_dir": str(tmp_path), "timeout": "5"},
            credentials={},
        )
    )


@pytest.fixture
def cluster(runtime) -> Cluster:
    """Half the Slurm node (4 CPUs, 2,048 MB, 4 GPUs): Slurm would run more than the
    cluster holds if the service let it, so what Slurm runs tests the service."""
    cluster = ClusterFactory(capacity_cpu=2000, capacity_ram_mb=1024, capacity_gpu=2)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
    cluster.refresh_from_db()
    return cluster


@pytest.fixture
def squeue(slurm) -> SlurmClient:
    return SlurmClient(str(slurm.conf))


def submit(cluster: Cluster, command: list[str] | None, **fields) -> Deployment:
    spec = DeploymentSpec(
        name=fields.pop("name", "job"),
        image=fields.pop("image", "registry.example.com/unused:1"),
        resources=fields.pop("resources", Resources(1000, 64, 0)),
        command=command,
        **fields,
    )
    return deployment_create(actor=UserFactory(), cluster=cluster, spec=spec)


def job_of(squeue: SlurmClient, deployment: Deployment):
    jobs = [job for job in squeue.jobs() if job.name == workload_name(deployment.pk)]
    return max(jobs, key=lambda job: job.job_id, default=None)


def test_a_deployment_runs_as_a_batch_job_and_exit_0_completes_it(cluster, squeue):
    deployment = submit(cluster, ["/bin/sh", "-c", "echo hello from slurm; sleep 1"])
    deployment.refresh_from_db()
    # Running once Slurm says RUNNING: at once on an idle node, or at the next look.
    assert deployment.status in (Status.STARTING, Status.RUNNING)
    job = job_of(squeue, deployment)
    assert job.labels["io.hypervisor.deployment"] == str(deployment.pk)

    deployment = settle(deployment, {Status.COMPLETED, Status.FAILED}, timeout=30)

    assert (deployment.status, deployment.exit_code) == (Status.COMPLETED, 0)
    assert DeploymentLog.objects.get(deployment=deployment).lines == ["hello from slurm"]
    cluster.refresh_from_db()
    assert cluster.allocated == Resources(0, 0, 0)


def test_exit_3_and_out_of_memory(cluster):
    three = submit(cluster, ["/bin/sh", "-c", "exit 3"])
    hog = ["python3", "-c", "import time; x = b'x' * (400 << 20); time.sleep(5)"]
    oom = submit(cluster, hog, resources=Resources(1000, 100, 0))

    three = settle(three, {Status.COMPLETED, Status.FAILED}, timeout=30)
    oom = settle(oom, {Status.COMPLETED, Status.FAILED}, timeout=30)

    assert (three.status, three.exit_code, three.status_reason) == (
        Status.FAILED,
        3,
        "exited with code 3",
    )
    assert oom.status == Status.FAILED
    assert oom.status_reason == "killed: out of memory"


def test_a_job_slurm_refuses_fails_with_slurms_message(runtime):
    # The cluster says 100 GB; no Slurm node has it.
    cluster = ClusterFactory(capacity_cpu=2000, capacity_ram_mb=100_000, capacity_gpu=0)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
    cluster.refresh_from_db()

    deployment = submit(cluster, ["true"], resources=Resources(1000, 50_000, 0))

    deployment.refresh_from_db()
    assert deployment.status == Status.FAILED
    assert "Requested node configuration is not available" in deployment.status_reason
    cluster.refresh_from_db()
    assert cluster.allocated == Resources(0, 0, 0)


def test_no_command_fails_at_start(cluster):
    deployment = submit(cluster, None)
    deployment.refresh_from_db()
    assert deployment.status == Status.FAILED
    assert "a command is required" in deployment.status_reason


def test_a_job_cancelled_behind_our_back_fails_cancelled_in_slurm(cluster, slurm):
    deployment = submit(cluster, ["sleep", "30"])
    name = workload_name(deployment.pk)
    subprocess.run(["scancel", f"--name={name}"], env=slurm.env(), check=True, timeout=10)

    deployment = settle(deployment, {Status.FAILED, Status.COMPLETED}, timeout=30)

    assert deployment.status == Status.FAILED
    assert deployment.status_reason == "cancelled in Slurm"
    assert deployment.exit_code is None


def sbatch_by_hand(slurm, *arguments: str) -> int:
    """A job of someone else's (no label of ours), straight through sbatch."""
    argv = ["sbatch", "--parsable", f"--partition={slurm.partition}", "--mem=16M"]
    argv += ["--output=/dev/null", *arguments]
    done = subprocess.run(
        argv, env=slurm.env(), check=True, timeout=10, text=True, capture_output=True
    )
    return int(done.stdout.strip())


def scontrol(slurm, *arguments: str) -> None:
    subprocess.run(["scontrol", *arguments], env=slurm.env(), check=True, timeout=10)


def wait_job(squeue: SlurmClient, job_id: int, phase: Phase) -> None:
    deadline = time.monotonic() + 30
    while squeue.job(job_id).phase is not phase:
        assert time.monotonic() < deadline, squeue.job(job_id)
        time.sleep(0.05)


@pytest.fixture
def busy_node(slurm, squeue) -> int:
    """Every CPU of the node taken by a job outside the service: Slurm holds ours PENDING."""
    blocker = sbatch_by_hand(slurm, "--cpus-per-task=4", "--wrap=sleep 120")
    wait_job(squeue, blocker, Phase.RUNNING)
    return blocker


def test_a_job_pending_in_slurm_is_starting_with_its_room_held_until_slurm_runs_it(
    cluster, runtime, slurm, squeue, busy_node
):
    deployment = submit(cluster, ["sleep", "30"])

    deployment.refresh_from_db()
    assert deployment.status == Status.STARTING
    assert deployment.status_reason.startswith(f"queued by runtime {runtime.name}, ")
    assert job_of(squeue, deployment).phase is Phase.PENDING
    # Its room is held: a deployment needing the whole cluster waits for it.
    whole = submit(cluster, ["sleep", "1"], resources=Resources(2000, 64, 0), name="whole")
    whole.refresh_from_db()
    assert whole.status == Status.QUEUED
    cluster.refresh_from_db()
    assert cluster.allocated == Resources(1000, 64, 0)
    # Looking again changes nothing while Slurm holds the job.
    reconcile_runtime(runtime_id=runtime.pk)
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTING

    scontrol(slurm, "hold", str(job_of(squeue, deployment).job_id))
    scancel = ["scancel", str(busy_node)]
    subprocess.run(scancel, env=slurm.env(), check=True, timeout=10)
    wait_job(squeue, busy_node, Phase.ENDED)
    # Held: the node is free, Slurm still does not run it.
    assert job_of(squeue, deployment).state_reason.startswith("JobHeld")
    reconcile_runtime(runtime_id=runtime.pk)
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTING

    scontrol(slurm, "release", str(job_of(squeue, deployment).job_id))
    deployment = settle(deployment, {Status.RUNNING, Status.COMPLETED, Status.FAILED}, timeout=30)

    assert deployment.status == Status.RUNNING
    assert job_of(squeue, deployment).phase is Phase.RUNNING
    last = deployment.events.order_by("at", "pk").last()
    assert (last.from_status, last.to_status) == (Status.STARTING, Status.RUNNING)
    assert last.reason == f"running on runtime {runtime.name}"


@pytest.fixture
def watcher(settings):
    """The embedded watcher's timer, on; every timer thread it left waited for."""
    settings.RUNTIME_WATCH_SECONDS = 0.3
    yield
    settings.RUNTIME_WATCH_SECONDS = 0
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.join(timeout=30)


def test_the_watcher_turns_a_start_running_when_slurm_runs_the_job(
    cluster, slurm, squeue, busy_node, watcher
):
    deployment = submit(cluster, ["sleep", "30"])
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTING

    subprocess.run(["scancel", str(busy_node)], env=slurm.env(), check=True, timeout=10)

    # Nobody here reconciles: the watcher's timer does.
    deadline = time.monotonic() + 30
    while deployment.status == Status.STARTING and time.monotonic() < deadline:
        time.sleep(0.1)
        deployment.refresh_from_db()
    assert deployment.status == Status.RUNNING
    deployment_act(actor=deployment.created_by, deployment_id=deployment.pk, action=Action.CANCEL)


def test_pending_in_slurm_cancel_and_a_cancel_behind_our_back(cluster, slurm, squeue, busy_node):
    ours = submit(cluster, ["sleep", "30"], name="ours")
    theirs = submit(cluster, ["sleep", "30"], name="theirs")
    pending = job_of(squeue, ours)
    assert pending.phase is Phase.PENDING

    ours = deployment_act(actor=ours.created_by, deployment_id=ours.pk, action=Action.CANCEL)
    name = workload_name(theirs.pk)
    subprocess.run(["scancel", f"--name={name}"], env=slurm.env(), check=True, timeout=10)
    theirs = settle(theirs, {Status.RUNNING, Status.FAILED, Status.COMPLETED}, timeout=30)

    ours.refresh_from_db()
    assert ours.status == Status.CANCELLED
    assert squeue.job(pending.job_id).state == "CANCELLED"
    assert (theirs.status, theirs.status_reason) == (Status.FAILED, "cancelled in Slurm")
    cluster.refresh_from_db()
    assert cluster.allocated == Resources(0, 0, 0)


def test_a_drive_asks_slurm_once_about_the_starts_it_holds_pending(
    cluster, slurm, squeue, busy_node, monkeypatch
):
    pending = [submit(cluster, ["sleep", "30"], name=f"p{index}") for index in range(2)]
    assert {job_of(squeue, d).phase for d in pending} == {Phase.PENDING}
    looks = []
    jobs = SlurmClient.jobs
    monkeypatch.setattr(SlurmClient, "jobs", lambda self: looks.append(1) or jobs(self))

    result = drive_cluster(cluster_id=cluster.pk)

    # One listing, not one `squeue --json` per start (nor a second job for any of them).
    assert (len(looks), result.started, result.ended) == (1, [], [])
    names = [job.name for job in squeue.jobs()]
    assert [names.count(workload_name(d.pk)) for d in pending] == [1, 1]


def wait_ready(squeue: SlurmClient, deployment: Deployment) -> None:
    """Until the job's command runs (Slurm says RUNNING a moment before)."""
    deadline = time.monotonic() + 30
    while "ready" not in squeue.read_output(job_of(squeue, deployment).output_path):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_cancel_while_running_stops_the_job_then_releases(cluster, squeue):
    deployment = submit(cluster, TERM_IGNORED)
    wait_ready(squeue, deployment)
    began = time.monotonic()
    deployment_act(actor=deployment.created_by, deployment_id=deployment.pk, action=Action.CANCEL)
    deployment.refresh_from_db()
    assert time.monotonic() - began >= 1  # the grace period
    assert deployment.status == Status.CANCELLED
    assert job_of(squeue, deployment).phase is Phase.ENDED  # gone, not COMPLETING


class Sampler(threading.Thread):
    """What Slurm holds on the node (RUNNING and COMPLETING jobs), sampled until stopped."""

    def __init__(self, squeue: SlurmClient, names: set[str] | None = None) -> None:
        super().__init__(daemon=True)
        self.squeue, self.names = squeue, names
        self.samples: list[list] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            jobs = [
                job
                for job in self.squeue.jobs()
                if job.phase is Phase.RUNNING and (self.names is None or job.name in self.names)
            ]
            self.samples.append(jobs)
            time.sleep(0.05)

    def stop(self) -> list[list]:
        self.done.set()
        self.join()
        return self.samples


def test_the_victim_is_gone_from_slurm_before_the_preemptor_is_submitted(cluster, squeue):
    low = submit(cluster, TERM_IGNORED, resources=Resources(2000, 64, 0))
    wait_ready(squeue, low)
    sampler = Sampler(squeue)
    sampler.start()
    high = submit(cluster, ["sleep", "30"], resources=Resources(2000, 64, 0), priority=10)
    deadline = time.monotonic() + 30
    while job_of(squeue, high).phase is not Phase.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)
    samples = sampler.stop()

    low.refresh_from_db()
    high = settle(high, {Status.RUNNING, Status.COMPLETED, Status.FAILED})
    assert (low.status, low.preemption_count, high.status) == (Status.QUEUED, 1, Status.RUNNING)
    low_name, high_name = workload_name(low.pk), workload_name(high.pk)
    both = [s for s in samples if {job.name for job in s} >= {low_name, high_name}]
    assert both == []
    assert any(job.name == high_name for s in samples for job in s)
    # The preemptor's job was submitted after the victim's had ended.
    [victim] = [job for job in squeue.jobs() if job.name == low_name]
    assert victim.phase is Phase.ENDED


def test_slurmctld_restarted_mid_run_nothing_is_lost(cluster, slurm, runtime):
    deployment = submit(cluster, ["sleep", "6"])
    deployment = settle(deployment, {Status.RUNNING, Status.COMPLETED, Status.FAILED})
    assert deployment.status == Status.RUNNING
    slurm.stop_controller()
    result = reconcile_runtime(runtime_id=runtime.pk)
    assert result.unreachable
    deployment.refresh_from_db()
    assert deployment.status == Status.RUNNING
    slurm.start_controller()

    deployment = settle(deployment, {Status.COMPLETED, Status.FAILED}, timeout=30)

    assert deployment.status == Status.COMPLETED


def test_an_end_seen_once_ends_its_deployment_after_slurm_forgot_the_job(
    cluster, slurm, squeue, runtime
):
    deployment = submit(cluster, ["/bin/sh", "-c", "echo bye; exit 3"])
    deadline = time.monotonic() + 30
    while job_of(squeue, deployment).phase is not Phase.ENDED:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Seen ended once, by a listing whose reconciliation never reported it (a worker that
    # died, an audit): the final state is recorded then.
    gateway_for(runtime).list_workloads(labels=installation_labels())
    # Slurm forgets it, as after MinJobAge (a cold start forgets every job at once).
    slurm.stop_controller()
    slurm.start_controller(clear_state=True)
    assert job_of(squeue, deployment) is None

    deployment = settle(deployment, {Status.COMPLETED, Status.FAILED}, timeout=30)

    assert (deployment.status, deployment.exit_code, deployment.status_reason) == (
        Status.FAILED,
        3,
        "exited with code 3",
    )
    assert DeploymentLog.objects.get(deployment=deployment).lines == ["bye"]


def test_concurrent_clients_never_make_slurm_run_more_than_the_capacity(cluster, squeue):
    """16 threads each create a deployment of a mixed size: first eight at priority 0, then,
    once Slurm runs some of them, eight at priorities 5 and 10 that preempt them; a
    reconciler runs beside them all along, as the watcher would. What Slurm runs for this
    cluster is sampled from `squeue --json` the whole time."""
    rng = random.Random(17)

    # Whole CPUs: Slurm allocates whole CPUs (fractional requests are refused on Slurm).
    def request(priority: int) -> tuple[Resources, int]:
        return Resources(rng.choice([1000, 2000]), 64, rng.choice([0, 1, 2])), priority

    low = [request(0) for _ in range(8)]
    high = [request(rng.choice([5, 10])) for _ in range(8)]
    created: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client(resources: Resources, priority: int) -> None:
        try:
            deployment = submit(cluster, ["sleep", "2"], resources=resources, priority=priority)
            with lock:
                created.append(deployment.pk)
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            connection.close()

    def wave(requests: list[tuple[Resources, int]]) -> None:
        threads = [threading.Thread(target=client, args=request) for request in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    reconciling = threading.Event()

    def reconciler() -> None:
        try:
            while not reconciling.is_set():
                reconcile_runtime(runtime_id=cluster.runtime_id)
                time.sleep(0.2)
        finally:
            connection.close()

    sampler = Sampler(squeue)
    sampler.start()
    watcher = threading.Thread(target=reconciler, daemon=True)
    watcher.start()
    try:
        wave(low)
        deadline = time.monotonic() + 30
        while not Deployment.objects.filter(pk__in=created, status=Status.RUNNING).exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        wave(high)
        assert errors == []
        deadline = time.monotonic() + 120
        unfinished = Deployment.objects.filter(pk__in=created).exclude(
            status__in=[Status.COMPLETED, Status.FAILED, Status.CANCELLED]
        )
        while unfinished.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        reconciling.set()
        watcher.join()
        samples = sampler.stop()
    assert list(unfinished.values_list("id", "status", "status_reason")) == []

    names = {workload_name(pk) for pk in created}
    held = [
        (
            sum(job.cpus for job in s if job.name in names),
            sum(job.gpus for job in s if job.name in names),
        )
        for s in samples
    ]
    assert max(cpus for cpus, _ in held) <= 2  # the cluster's 2,000 millicores, in CPUs
    assert max(gpus for _, gpus in held) <= 2
    assert max(cpus for cpus, _ in held) == 2  # it was full at times: the check saw work
    assert Deployment.objects.filter(pk__in=created, status=Status.COMPLETED).count() == 16
    # Preemption happened under this concurrency, and the victims ran again to the end.
    preempted = Deployment.objects.filter(pk__in=created, preemption_count__gt=0)
    assert preempted.exists()
    assert 10 not in set(preempted.values_list("priority", flat=True))  # nothing is higher
