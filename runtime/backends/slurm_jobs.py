"""The Slurm backend: one batch job per workload, through Slurm's client commands.

Endpoint: the path of the cluster's `slurm.conf` (`runtime/slurm/client.py` runs sbatch,
squeue --json and scancel with it). Options: `partition` (default: the cluster's default
partition), `container` (`none`, the only method built: the command runs on the node
directly; `oci` and `podman` are refused), `output_dir` (where jobs write their output and
this backend its records; a file system shared by the nodes and this service; default
`/tmp/hypervisor-slurm`), `timeout` (seconds for one command, default 20).

A workload is the job named `spec.name` in the partition, the latest one not removed
(`runtime/slurm/records.py`: Slurm cannot delete a job, so removals and final states are
kept beside the output files). The CPU request is `--cpus-per-task` and must be whole CPUs,
at least one (Slurm allocates no less: anything else is refused, as the service does before
admitting it), `ram_mb` is `--mem` (0: the partition's default), GPUs `--gres=gpu:N`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from runtime.backends.base import (
    MISSING,
    Phase,
    RuntimeUnavailable,
    Workload,
    WorkloadRejected,
    WorkloadSpec,
    WorkloadState,
)
from runtime.slurm import states
from runtime.slurm.client import JobInfo, JobSpec, SlurmClient, SlurmError, SlurmRejected
from runtime.slurm.records import JobRecords

T = TypeVar("T")
# The label every job of this service carries (runtime.labels names the same key; the
# backends know nothing of the catalog's models, so it is spelled here too).
INSTALLATION_LABEL = "io.hypervisor.installation"
CONTAINER_METHODS = ("none",)
DEFAULT_OUTPUT_DIR = "/tmp/hypervisor-slurm"
# How often a stop looks whether the job is gone, and how long past the grace it waits
# for Slurm to report it gone (KILL, then slurmstepd's cleanup: a few seconds here).
POLL_SECONDS = 0.2
GONE_WAIT_SECONDS = 60.0


def option_errors(options: dict[str, Any]) -> list[str]:
    """What is wrong with a slurm runtime's options (empty: nothing)."""
    errors = []
    container = options.get("container", "none")
    if container not in CONTAINER_METHODS:
        errors.append(
            f"container={container}: this version runs Slurm jobs with container=none only "
            "(the command on the node)."
        )
    timeout = options.get("timeout", "20")
    if not str(timeout).isdigit() or int(timeout) < 1:
        errors.append(f"timeout={timeout}: whole seconds, at least 1.")
    return errors


@contextmanager
def _slurm_errors() -> Iterator[None]:
    """Translate the client's errors into the protocol's two kinds."""
    try:
        yield
    except SlurmRejected as error:
        raise WorkloadRejected(f"Slurm refused the job: {error}") from error
    except SlurmError as error:
        raise RuntimeUnavailable(f"Slurm unreachable: {error}") from error
    except OSError as error:  # the output directory (a shared file system) failed us
        raise RuntimeUnavailable(f"Slurm output directory unusable: {error}") from error


def _state_of(job: JobInfo) -> WorkloadState:
    phase = job.phase
    if phase is states.Phase.PENDING:
        # Slurm says "None" until its scheduler has looked at the job.
        reason = "" if job.state_reason in ("", "None") else job.state_reason
        return WorkloadState(Phase.QUEUED, waits_for=reason)
    if phase is states.Phase.RUNNING:
        return WorkloadState(Phase.RUNNING)
    outcome = job.outcome
    return WorkloadState(
        phase=Phase.EXITED,
        exit_code=outcome.exit_code,
        oom_killed=job.state == "OUT_OF_MEMORY",
        # A plain non-zero exit is said by its code; anything else in Slurm's words.
        error="" if outcome.succeeded or _plain_exit(job, outcome) else outcome.reason,
    )


def _plain_exit(job: JobInfo, outcome: states.Outcome) -> bool:
    """Said by the exit code (or by `oom_killed`) alone: no words needed."""
    return job.state == "OUT_OF_MEMORY" or (job.state == "FAILED" and outcome.exit_code is not None)


class SlurmBackend:
    """Batch jobs on one Slurm cluster (see the module docstring)."""

    queues = True  # a job waits PENDING in Slurm's queue

    def __init__(self, *, endpoint: str, options: dict[str, Any], credentials: dict) -> None:
        errors = option_errors(options)
        if errors:
            raise ValueError(" ".join(errors))
        self.client = SlurmClient(endpoint, timeout=float(options.get("timeout", 20)))
        self.partition = options.get("partition") or ""
        self.records = JobRecords(options.get("output_dir") or DEFAULT_OUTPUT_DIR)

    def _call(self, operation: Callable[[], T]) -> T:
        with _slurm_errors():
            return operation()

    # -- finding a workload's job ----------------------------------------------------------

    def _ours(self, job: JobInfo) -> bool:
        """In our partition and labelled by an installation of this service: a job someone
        submitted by hand under the same name is never touched."""
        in_partition = not self.partition or job.partition == self.partition
        return in_partition and INSTALLATION_LABEL in job.labels

    def _current(self, name: str, jobs: list[JobInfo] | None = None) -> JobInfo | None:
        """The latest job named `name` that was not removed: from Slurm while it still
        knows it (recording its final state the first time it is seen ended), else from
        the records."""
        removed = self.records.removed_up_to(name)
        listed = self.client.jobs() if jobs is None else jobs
        known = [j for j in listed if j.name == name and self._ours(j) and j.job_id > removed]
        latest = max(known + self.records.finals(name), key=lambda job: job.job_id, default=None)
        if any(job is latest for job in known) and latest.phase is states.Phase.ENDED:
            self.records.record_final(latest)
        return latest

    # -- the protocol ------------------------------------------------------------------------

    def ping(self) -> None:
        self._call(self.client.ping)

    def start(self, spec: WorkloadSpec) -> WorkloadState:
        if not spec.command:
            raise WorkloadRejected(
                "A Slurm runtime with container=none runs the deployment's command on the "
                "node: a command is required."
            )
        if spec.cpu_millicores % 1000 or not spec.cpu_millicores:
            # The service refuses such requests on Slurm before they are admitted; this is
            # the last guard, for one that raced a runtime's attachment.
            raise WorkloadRejected(
                f"Slurm allocates whole CPUs, at least one per job: "
                f"{spec.cpu_millicores / 1000:g} CPU would hold more on a node than was "
                "counted for it."
            )
        return self._call(lambda: self._start(spec))

    def _start(self, spec: WorkloadSpec) -> WorkloadState:
        self.records.ensure_directory()
        with self.records.start_lock(spec.name):
            job = self._current(spec.name)
            if job is not None:
                return _state_of(job)
            try:
                self.client.submit(self._job_spec(spec))
            except ValueError as error:  # what a shell script cannot carry
                raise WorkloadRejected(str(error)) from error
            job = self._current(spec.name)
        return MISSING if job is None else _state_of(job)

    def _job_spec(self, spec: WorkloadSpec) -> JobSpec:
        return JobSpec(
            name=spec.name,
            command=list(spec.command or ()),
            partition=self.partition,
            output_dir=str(self.records.directory),
            cpus=spec.cpu_millicores // 1000,
            memory_mb=spec.ram_mb,
            gpus=spec.gpu,
            env=dict(spec.env),
            labels=dict(spec.labels),
        )

    def stop(self, name: str, *, grace_seconds: float) -> WorkloadState:
        return self._call(lambda: self._stop(name, grace_seconds))

    def _stop(self, name: str, grace_seconds: float) -> WorkloadState:
        """TERM to every process of a running job, KILL once `grace_seconds` have passed
        (a pending job is simply cancelled); answers once Slurm reports the job gone (no
        longer COMPLETING: its processes have left the node), or its state then if that
        takes longer than GONE_WAIT_SECONDS."""
        job = self._current(name)
        if job is None:
            return MISSING
        if job.phase is states.Phase.PENDING:
            self.client.cancel([job.job_id])
        elif job.phase is states.Phase.RUNNING:
            self.client.signal([job.job_id], "TERM")
            job = self._await_end(name, deadline=time.monotonic() + grace_seconds)
            if job is not None and job.phase is not states.Phase.ENDED:
                self.client.kill([job.job_id])
        job = self._await_end(name, deadline=time.monotonic() + GONE_WAIT_SECONDS)
        return MISSING if job is None else _state_of(job)

    def _await_end(self, name: str, *, deadline: float) -> JobInfo | None:
        while True:
            job = self._current(name)
            if job is None or job.phase is states.Phase.ENDED or time.monotonic() >= deadline:
                return job
            time.sleep(POLL_SECONDS)

    def state(self, name: str) -> WorkloadState:
        job = self._call(lambda: self._current(name))
        return MISSING if job is None else _state_of(job)

    def logs(self, name: str, *, tail: int) -> list[str]:
        return self._call(lambda: self._logs(name, tail))

    def _logs(self, name: str, tail: int) -> list[str]:
        job = self._current(name)
        if job is None or tail <= 0:
            return []
        return self.client.read_output(job.output_path).splitlines()[-tail:]

    def remove(self, name: str) -> None:
        self._call(lambda: self._remove(name))

    def _remove(self, name: str) -> None:
        job = self._current(name)
        if job is None:
            return
        if job.phase is not states.Phase.ENDED:
            self.client.kill([job.job_id])
        self.records.mark_removed(name, job.job_id)

    def list_workloads(self, *, labels: dict[str, str]) -> list[Workload]:
        return self._call(lambda: self._list(labels))

    def _list(self, labels: dict[str, str]) -> list[Workload]:
        """One `squeue --json` for all; the records add the ended jobs Slurm forgot."""

        def matches(job: JobInfo) -> bool:
            return all(job.labels.get(key) == value for key, value in labels.items())

        jobs = [job for job in self.client.jobs() if self._ours(job) and matches(job)]
        names = {job.name for job in jobs} | {
            job.name for job in self.records.finals() if matches(job)
        }
        found = []
        for name in sorted(names):
            job = self._current(name, jobs)
            if job is not None:
                found.append(Workload(name=name, labels=job.labels, state=_state_of(job)))
        return found
