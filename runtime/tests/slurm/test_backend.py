"""The `slurm` backend behind the runtime protocol, against a real Slurm (conftest.py)."""

from __future__ import annotations

import secrets
import subprocess
import threading
import time

import pytest

from devtools.slurm import KILL_WAIT_SECONDS
from runtime.backends import build_backend
from runtime.backends.base import Phase, RuntimeUnavailable, WorkloadRejected, WorkloadSpec
from runtime.backends.slurm_jobs import SlurmBackend
from runtime.slurm.client import SlurmClient


@pytest.fixture
def backend(slurm, tmp_path) -> SlurmBackend:
    options = {"partition": slurm.partition, "container": "none", "output_dir": str(tmp_path)}
    return build_backend(kind="slurm", endpoint=str(slurm.conf), options=options, credentials={})


@pytest.fixture
def ours() -> dict[str, str]:
    """This test's installation label: jobs of earlier tests stay listed in Slurm until
    MinJobAge, under theirs."""
    return {"io.hypervisor.installation": f"inst-{secrets.token_hex(4)}"}


@pytest.fixture
def workload(ours):
    def make(name: str, command: list[str], **kwargs) -> WorkloadSpec:
        deployment = {"io.hypervisor.deployment": name.rsplit("-", 1)[-1]}
        return WorkloadSpec(
            name=name,
            image="unused.example/none:1",
            labels=kwargs.pop("labels", ours) | deployment,
            command=tuple(command),
            **{"cpu_millicores": 1000, "ram_mb": 64, **kwargs},
        )

    return make


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def wait_phase(backend: SlurmBackend, name: str, phase: Phase, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while (state := backend.state(name)).phase != phase:
        assert time.monotonic() < deadline, f"{name} is {state}, not {phase}"
        time.sleep(0.1)
    return state


def wait_output(backend: SlurmBackend, name: str, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in "\n".join(backend.logs(name, tail=100)):
        assert time.monotonic() < deadline, f"{name} never wrote {text!r}"
        time.sleep(0.1)


def jobs_named(slurm, name: str) -> list[int]:
    client = SlurmClient(str(slurm.conf))
    return [job.job_id for job in client.jobs() if job.name == name]


def test_a_workload_runs_exits_zero_and_its_logs_are_read_back(backend, workload):
    state = backend.start(workload("hv-ok-1", sh("echo one; echo two; sleep 1")))
    assert state.phase in (Phase.QUEUED, Phase.RUNNING)

    wait_phase(backend, "hv-ok-1", Phase.RUNNING)
    ended = wait_phase(backend, "hv-ok-1", Phase.EXITED)

    assert (ended.exit_code, ended.oom_killed, ended.error) == (0, False, "")
    assert backend.logs("hv-ok-1", tail=1) == ["two"]
    assert backend.logs("hv-ok-1", tail=10) == ["one", "two"]


def test_exit_three_and_out_of_memory(backend, workload):
    backend.start(workload("hv-three-2", sh("exit 3")))
    hog = ["python3", "-c", "import time; x = b'x' * (400 << 20); time.sleep(5)"]
    backend.start(workload("hv-hog-3", hog, ram_mb=100))

    three = wait_phase(backend, "hv-three-2", Phase.EXITED)
    hog_state = wait_phase(backend, "hv-hog-3", Phase.EXITED)

    assert (three.exit_code, three.oom_killed, three.error) == (3, False, "")
    assert hog_state.oom_killed
    assert hog_state.error == ""  # oom_killed says it


def test_gpus_and_cpus_reach_slurm(backend, workload):
    show = sh("echo gpus=$CUDA_VISIBLE_DEVICES cpus=$SLURM_CPUS_PER_TASK")
    backend.start(workload("hv-gpu-4", show, gpu=2, cpu_millicores=2000))

    wait_phase(backend, "hv-gpu-4", Phase.EXITED)

    assert backend.logs("hv-gpu-4", tail=5) == ["gpus=0,1 cpus=2"]


@pytest.mark.parametrize("millicores", [1500, 500, 0])
def test_a_request_of_other_than_whole_cpus_is_refused_never_submitted(
    backend, workload, slurm, millicores
):
    name = f"hv-fraction-{millicores}"
    with pytest.raises(WorkloadRejected, match="Slurm allocates whole CPUs, at least one"):
        backend.start(workload(name, sh("true"), cpu_millicores=millicores))
    assert jobs_named(slurm, name) == []


def test_env_values_with_commas_quotes_and_newlines(backend, workload):
    env = {"A": "x,y=z", "B": 'it\'s "q" $(no)', "C": "1\n2"}
    dump = ["python3", "-c", "import os; print(repr([os.environ[k] for k in 'ABC']))"]
    backend.start(workload("hv-env-5", dump, env=env))

    wait_phase(backend, "hv-env-5", Phase.EXITED)

    assert backend.logs("hv-env-5", tail=5) == [repr(list(env.values()))]


def test_start_is_idempotent_even_when_concurrent(backend, workload, slurm):
    spec = workload("hv-once-6", sh("sleep 30"))
    threads = [threading.Thread(target=backend.start, args=(spec,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    backend.start(spec)

    assert len(jobs_named(slurm, "hv-once-6")) == 1


def test_a_start_without_a_command_or_with_a_bad_env_is_rejected(backend, workload, slurm):
    with pytest.raises(WorkloadRejected, match="a command is required"):
        backend.start(workload("hv-nocmd-7", []))
    with pytest.raises(WorkloadRejected, match="not a shell name"):
        backend.start(workload("hv-badenv-8", sh("true"), env={"NOT-A-NAME": "x"}))
    assert jobs_named(slurm, "hv-nocmd-7") == jobs_named(slurm, "hv-badenv-8") == []


def test_a_job_slurm_refuses_at_submit_is_rejected_with_slurms_message(backend, workload):
    with pytest.raises(WorkloadRejected) as rejected:
        backend.start(workload("hv-huge-9", sh("true"), ram_mb=10_000_000))

    assert "Requested node configuration is not available" in str(rejected.value)
    # Slurm keeps the refused job, FAILED without running; a retried start returns it.
    state = backend.state("hv-huge-9")
    assert (state.phase, state.exit_code) == (Phase.EXITED, None)
    assert state.error == "failed by Slurm without running (BadConstraints)"


def test_stop_lets_a_graceful_job_end_on_term(backend, workload):
    graceful = sh("trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done")
    backend.start(workload("hv-grace-10", graceful))
    wait_output(backend, "hv-grace-10", "ready")

    started = time.monotonic()
    state = backend.stop("hv-grace-10", grace_seconds=10)

    assert state.phase == Phase.EXITED
    assert time.monotonic() - started < 5
    assert "bye" in backend.logs("hv-grace-10", tail=10)


def test_stop_kills_after_the_grace_and_answers_once_the_job_is_gone(backend, workload, slurm):
    stubborn = sh("trap '' TERM; echo ready; while :; do sleep 0.1; done")
    backend.start(workload("hv-stubborn-11", stubborn))
    wait_output(backend, "hv-stubborn-11", "ready")
    [job_id] = jobs_named(slurm, "hv-stubborn-11")

    started = time.monotonic()
    state = backend.stop("hv-stubborn-11", grace_seconds=1)
    took = time.monotonic() - started

    assert state.phase == Phase.EXITED
    assert 1 <= took < KILL_WAIT_SECONDS + 15
    # Gone means gone: nothing of the job is left on the node.
    freezer = slurm.job_cgroup("freezer", job_id)
    assert not freezer.exists() or not any(
        p.read_text().split() for p in freezer.rglob("cgroup.procs")
    )


def test_stop_of_a_pending_job_and_of_an_unknown_name(backend, workload):
    blocker = workload("hv-blocker-12", sh("sleep 30"), cpu_millicores=4000)
    backend.start(blocker)
    wait_phase(backend, "hv-blocker-12", Phase.RUNNING)
    queued = backend.start(workload("hv-queued-13", sh("sleep 30"), cpu_millicores=4000))
    assert queued.phase == Phase.QUEUED
    # Slurm's reason once its scheduler looked: the node's CPUs are taken.
    deadline = time.monotonic() + 30
    while (state := backend.state("hv-queued-13")).waits_for != "Resources":
        assert time.monotonic() < deadline, state
        time.sleep(0.1)

    assert backend.stop("hv-queued-13", grace_seconds=5).phase == Phase.EXITED
    assert backend.stop("hv-nobody-14", grace_seconds=5).phase == Phase.MISSING


def test_remove_forgets_the_job_and_a_new_start_submits_a_new_one(backend, workload, ours, slurm):
    backend.start(workload("hv-again-15", sh("echo first")))
    wait_phase(backend, "hv-again-15", Phase.EXITED)

    backend.remove("hv-again-15")
    backend.remove("hv-again-15")

    assert backend.state("hv-again-15").phase == Phase.MISSING
    assert backend.logs("hv-again-15", tail=10) == []
    assert backend.list_workloads(labels=ours) == []
    backend.start(workload("hv-again-15", sh("echo second")))
    wait_phase(backend, "hv-again-15", Phase.EXITED)
    assert backend.logs("hv-again-15", tail=10) == ["second"]
    assert len(jobs_named(slurm, "hv-again-15")) == 2


def test_listing_finds_only_this_installations_jobs(backend, workload, ours):
    theirs = {"io.hypervisor.installation": f"other-{secrets.token_hex(4)}"}
    backend.start(workload("hv-mine-16", sh("sleep 30")))
    backend.start(workload("hv-mine-17", sh("exit 3")))
    backend.start(workload("hv-theirs-18", sh("sleep 30"), labels=theirs))
    wait_phase(backend, "hv-mine-17", Phase.EXITED)

    found = {w.name: w for w in backend.list_workloads(labels=ours)}

    assert sorted(found) == ["hv-mine-16", "hv-mine-17"]
    assert found["hv-mine-16"].labels == {**ours, "io.hypervisor.deployment": "16"}
    assert found["hv-mine-17"].state.exit_code == 3
    assert [w.name for w in backend.list_workloads(labels=theirs)] == ["hv-theirs-18"]


def test_a_job_submitted_by_hand_under_the_same_name_is_never_touched(backend, slurm):
    sbatch = ["sbatch", "--parsable", "--job-name=hv-hand-23", "--mem=16M", "--output=/dev/null"]
    sbatch.append("--wrap=sleep 30")
    by_hand = subprocess.run(
        sbatch, env=slurm.env(), check=True, timeout=10, text=True, capture_output=True
    ).stdout.strip()

    assert backend.state("hv-hand-23").phase == Phase.MISSING
    assert backend.stop("hv-hand-23", grace_seconds=0).phase == Phase.MISSING
    backend.remove("hv-hand-23")
    job = SlurmClient(str(slurm.conf)).job(int(by_hand))
    assert job.phase.value in ("pending", "running")


def test_a_job_cancelled_behind_our_back_reads_cancelled_in_slurm(backend, workload, slurm):
    backend.start(workload("hv-victim-19", sh("sleep 30")))
    wait_phase(backend, "hv-victim-19", Phase.RUNNING)

    subprocess.run(["scancel", "--name=hv-victim-19"], env=slurm.env(), check=True, timeout=10)

    state = wait_phase(backend, "hv-victim-19", Phase.EXITED)
    assert state.error == "cancelled in Slurm"
    assert state.exit_code is None


def test_a_final_state_seen_once_outlives_slurm_forgetting_the_job(backend, workload, ours, slurm):
    backend.start(workload("hv-forgot-20", sh("echo done; exit 3")))
    wait_phase(backend, "hv-forgot-20", Phase.EXITED)
    backend.start(workload("hv-unseen-21", sh("exit 0")))
    # It ends while the backend does not look (the client looks instead).
    client = SlurmClient(str(slurm.conf))
    [unseen] = jobs_named(slurm, "hv-unseen-21")
    deadline = time.monotonic() + 30
    while client.job(unseen).outcome is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # A cold start of the controller loses every job, as MinJobAge does for ended ones.
    slurm.stop_controller()
    slurm.start_controller(clear_state=True)
    assert jobs_named(slurm, "hv-forgot-20") == []

    state = backend.state("hv-forgot-20")
    assert (state.phase, state.exit_code) == (Phase.EXITED, 3)
    assert backend.logs("hv-forgot-20", tail=5) == ["done"]
    assert [w.name for w in backend.list_workloads(labels=ours)] == ["hv-forgot-20"]
    # Never seen ended before Slurm forgot it: lost.
    assert backend.state("hv-unseen-21").phase == Phase.MISSING


def test_slurmctld_down_then_back_the_running_job_is_found_again(
    backend, workload, ours, slurm, tmp_path
):
    backend.start(workload("hv-survivor-22", sh("sleep 60")))
    wait_phase(backend, "hv-survivor-22", Phase.RUNNING)
    impatient = SlurmBackend(
        endpoint=str(slurm.conf),
        options={"partition": slurm.partition, "output_dir": str(tmp_path), "timeout": "2"},
        credentials={},
    )

    slurm.stop_controller()
    with pytest.raises(RuntimeUnavailable):
        impatient.ping()
    with pytest.raises(RuntimeUnavailable):
        impatient.list_workloads(labels=ours)
    slurm.start_controller()

    [found] = backend.list_workloads(labels=ours)
    assert (found.name, found.state.phase) == ("hv-survivor-22", Phase.RUNNING)
    backend.ping()
