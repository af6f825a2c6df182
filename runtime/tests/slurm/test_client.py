"""The Slurm client against a real slurmctld and slurmd (see conftest.py)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from devtools.slurm import KILL_WAIT_SECONDS, NODE_CPUS, NODE_GPUS
from runtime.slurm.client import JobInfo, JobSpec, SlurmClient, SlurmRejected, SlurmUnavailable
from runtime.slurm.states import Phase

INSTALLATION = "test-installation"


def spec(slurm, name: str, command: list[str], **kwargs) -> JobSpec:
    labels = kwargs.pop("labels", {"io.hypervisor.installation": INSTALLATION})
    return JobSpec(
        name=name,
        command=command,
        partition=slurm.partition,
        output_dir=str(slurm.jobs_dir),
        labels=labels,
        **{"memory_mb": 64, **kwargs},
    )


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def wait_for(client: SlurmClient, job_id: int, phase: Phase, timeout: float = 30) -> JobInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job is not None and job.phase is phase:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not {phase} after {timeout}s: {client.job(job_id)}")


def test_exit_zero_completes_and_its_output_is_read_back(slurm, client):
    job_id = client.submit(spec(slurm, "ok", sh("echo hello from slurm; exit 0")))

    job = wait_for(client, job_id, Phase.ENDED)

    assert job.state == "COMPLETED"
    assert job.outcome.succeeded and job.outcome.exit_code == 0
    assert job.output_path == f"{slurm.jobs_dir}/ok-{job_id}.out"
    assert client.read_output(job.output_path) == "hello from slurm\n"


def test_exit_three_fails_with_its_exit_code(slurm, client):
    job_id = client.submit(spec(slurm, "three", sh("exit 3")))

    job = wait_for(client, job_id, Phase.ENDED)

    assert job.state == "FAILED"
    assert job.wait_status == 3 << 8
    assert not job.outcome.succeeded
    assert job.outcome.exit_code == 3
    assert job.outcome.reason == "exited with code 3"


def test_over_its_memory_the_job_ends_out_of_memory(slurm, client):
    hog = ["python3", "-c", "import time; x = b'x' * (400 << 20); time.sleep(5)"]
    job_id = client.submit(spec(slurm, "hog", hog, memory_mb=100))

    job = wait_for(client, job_id, Phase.ENDED)

    assert job.state == "OUT_OF_MEMORY"
    assert not job.outcome.succeeded
    assert "out of memory" in job.outcome.reason


def test_env_with_awkward_values_arrives_as_written(slurm, client, monkeypatch):
    monkeypatch.setenv("HV_SERVICE_SECRET", "must-not-leak")
    env = {
        "COMMA": "a,b,c=d",
        "QUOTES": 'it\'s "quoted" `not run` $(not run) $HOME',
        "NEWLINES": "line one\nline two\n",
        "UNICODE": "μ-ünïcode ✓",
        "EMPTY": "",
        "BACKSLASH": "C:\\path\\",
    }
    dump = ["python3", "-c", "import json, os; print(json.dumps(dict(os.environ)))"]
    job_id = client.submit(spec(slurm, "env", dump, env=env))

    job = wait_for(client, job_id, Phase.ENDED)

    assert job.state == "COMPLETED"
    seen = json.loads(client.read_output(job.output_path))
    assert {name: seen.get(name) for name in env} == env
    assert "HV_SERVICE_SECRET" not in seen
    assert seen["SLURM_JOB_ID"] == str(job_id)


def test_environment_names_that_are_not_shell_names_are_refused(slurm, client):
    with pytest.raises(ValueError, match="not a shell name"):
        client.submit(spec(slurm, "bad-env", sh("true"), env={"A;rm -rf /": "x"}))
    assert all(job.name != "bad-env" for job in client.jobs())


def test_gpus_are_fake_gres_devices_and_limit_what_runs(slurm, client):
    show = sh("echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES; sleep 30")
    first = client.submit(spec(slurm, "gpu-a", show, gpus=3))
    running = wait_for(client, first, Phase.RUNNING)
    second = client.submit(spec(slurm, "gpu-b", sh("true"), gpus=3))
    # The one GPU left is enough for a third: once it has run, Slurm has seen the second.
    third = client.submit(spec(slurm, "gpu-c", sh("echo $CUDA_VISIBLE_DEVICES"), gpus=1))
    assert wait_for(client, third, Phase.ENDED).state == "COMPLETED"

    assert (client.job(first).cpus, client.job(first).gpus) == (1, 3)
    assert NODE_GPUS < 6  # so the second cannot fit beside the first
    assert client.job(second).phase is Phase.PENDING
    assert client.job(second).state_reason == "Resources"
    deadline = time.monotonic() + 10
    while "CUDA" not in client.read_output(running.output_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.read_output(running.output_path) == "CUDA_VISIBLE_DEVICES=0,1,2\n"

    client.cancel([first])
    assert wait_for(client, second, Phase.ENDED).state == "COMPLETED"


def test_pending_jobs_start_in_priority_order(slurm, client):
    blocker = client.submit(spec(slurm, "blocker", sh("sleep 30"), cpus=NODE_CPUS))
    wait_for(client, blocker, Phase.RUNNING)
    low = client.submit(spec(slurm, "low", sh("sleep 30"), cpus=NODE_CPUS, priority=10))
    high = client.submit(spec(slurm, "high", sh("sleep 30"), cpus=NODE_CPUS, priority=1000))

    client.cancel([blocker])

    wait_for(client, high, Phase.RUNNING)
    assert client.job(low).phase is Phase.PENDING


def start_ready(slurm, client: SlurmClient, name: str, on_term: str) -> JobInfo:
    """A job that runs `on_term` on TERM, once it has said it is ready."""
    loop = sh(f"trap {on_term} TERM; echo ready; while :; do sleep 0.1; done")
    job = wait_for(client, client.submit(spec(slurm, name, loop)), Phase.RUNNING)
    while "ready" not in client.read_output(job.output_path):
        time.sleep(0.05)
    return job


def test_cancel_sends_term_first_and_the_job_ends_cancelled(slurm, client):
    job = start_ready(slurm, client, "graceful", "'echo got TERM; exit 0'")
    job_id = job.job_id
    started = time.monotonic()

    client.cancel([job_id])

    ended = wait_for(client, job_id, Phase.ENDED)
    assert time.monotonic() - started < KILL_WAIT_SECONDS
    assert ended.state == "CANCELLED"
    assert ended.outcome.cancelled
    assert "got TERM" in client.read_output(job.output_path)


def test_a_job_that_ignores_term_is_killed_after_kill_wait(slurm, client):
    job_id = start_ready(slurm, client, "stubborn", "''").job_id
    started = time.monotonic()

    client.cancel([job_id])

    # The job stays COMPLETING (phase RUNNING: its room is not free) until its processes
    # are gone, which takes KillWait and the KILL.
    ended = wait_for(client, job_id, Phase.ENDED)
    took = time.monotonic() - started
    assert _job_processes(slurm, job_id) == []
    assert KILL_WAIT_SECONDS <= took < KILL_WAIT_SECONDS + 10
    assert ended.state == "CANCELLED"


def _job_processes(slurm, job_id: int) -> list[str]:
    cgroup = slurm.job_cgroup("freezer", job_id)
    if not cgroup.exists():
        return []
    return [line for path in cgroup.rglob("cgroup.procs") for line in path.read_text().split()]


def test_a_job_cancelled_behind_our_back_reads_cancelled_in_slurm(slurm, client):
    job_id = client.submit(spec(slurm, "victim", sh("sleep 30")))
    wait_for(client, job_id, Phase.RUNNING)

    subprocess.run(["scancel", str(job_id)], env=slurm.env(), check=True, timeout=10)

    job = wait_for(client, job_id, Phase.ENDED)
    assert job.outcome.cancelled
    assert job.outcome.reason == "cancelled in Slurm"


def test_a_job_asking_more_memory_than_any_node_is_rejected_with_slurms_message(slurm, client):
    with pytest.raises(SlurmRejected) as rejected:
        client.submit(spec(slurm, "too-big", sh("true"), memory_mb=10_000_000))

    assert "Requested node configuration is not available" in str(rejected.value)


def test_jobs_are_found_again_by_label_after_slurmctld_restarts(slurm, client):
    mine = {"io.hypervisor.installation": INSTALLATION, "io.hypervisor.deployment": "42"}
    other = {"io.hypervisor.installation": "someone-else", "io.hypervisor.deployment": "42"}
    job_id = client.submit(spec(slurm, "survivor", sh("sleep 60"), labels=mine))
    foreign = client.submit(spec(slurm, "foreign", sh("sleep 60"), labels=other))
    wait_for(client, job_id, Phase.RUNNING)

    slurm.stop_controller()
    with pytest.raises(SlurmUnavailable):
        SlurmClient(str(slurm.conf), timeout=3).jobs()
    slurm.start_controller()

    found = client.labelled_jobs(mine)
    assert [(job.job_id, job.labels, job.phase) for job in found] == [(job_id, mine, Phase.RUNNING)]
    assert [job.job_id for job in client.labelled_jobs(other)] == [foreign]
    assert client.submit(spec(slurm, "after", sh("true"))) > job_id
