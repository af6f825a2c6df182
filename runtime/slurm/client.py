"""Talk to a Slurm cluster through its client commands (sbatch, squeue, scancel).

The endpoint is a `slurm.conf` path: every command runs with `SLURM_CONF` set to it, with a
minimal environment (the service's own environment, with its secrets, never reaches a job),
and with a timeout (a controller that is down makes a command hang for ~10 s and then fail).
slurmrestd is not used: pyslurm has no build for Debian's Slurm 22.05, and the commands need
no token handling. Knows nothing of deployments: a `JobSpec` in, `JobInfo` out.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime.slurm.script import batch_script, check_label
from runtime.slurm.states import Outcome, Phase, outcome_of, phase_of

DEFAULT_TIMEOUT = 20.0
# What sbatch, squeue and scancel print when they cannot reach the controller (as opposed
# to the controller refusing a request).
UNREACHABLE_MARKERS = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Zero Bytes were transmitted",
    "Connection refused",
    "Communication connection failure",
    "Slurm temporarily unable to accept job",
)

# What scancel says of a job that has ended, or is ending, already.
ALREADY_ENDED_MARKERS = (
    "Invalid job id specified",
    "Job/step already completing or completed",
)


class SlurmError(Exception):
    """A Slurm command failed."""


class SlurmUnavailable(SlurmError):
    """The controller did not answer (down, unreachable or too slow): try again later."""


class SlurmRejected(SlurmError):
    """Slurm refused the request; its message says why. Retrying will not help."""


@dataclass(frozen=True)
class JobSpec:
    """One batch job: a single task with its CPUs, memory and GPUs on one node."""

    name: str
    command: list[str]
    partition: str
    output_dir: str
    cpus: int = 1
    memory_mb: int = 0  # 0: Slurm's default for the partition
    gpus: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    priority: int | None = None  # an explicit Slurm priority (operators only)


@dataclass(frozen=True)
class JobInfo:
    """One job as `squeue --json` shows it."""

    job_id: int
    name: str
    partition: str
    state: str
    wait_status: int
    labels: dict[str, str]
    output_path: str
    state_reason: str
    cpus: int = 0  # allocated (requested while pending)
    gpus: int = 0  # GPUs on its node

    @property
    def phase(self) -> Phase:
        return phase_of(self.state)

    @property
    def outcome(self) -> Outcome | None:
        """How it ended, or None while it is pending or running."""
        if self.phase is not Phase.ENDED:
            return None
        return outcome_of(self.state, self.wait_status, self.state_reason)


def labels_to_comment(labels: Mapping[str, str]) -> str:
    for key, value in labels.items():
        check_label(key)
        check_label(value)
    return ",".join(f"{key}={value}" for key, value in labels.items())


def labels_from_comment(comment: str) -> dict[str, str]:
    labels = {}
    for item in comment.split(","):
        key, sep, value = item.partition("=")
        if sep:
            labels[key.strip()] = value.strip()
    return labels


def _state_name(raw) -> str:
    # 22.05 prints one string; later versions print a list of state and flags.
    if isinstance(raw, list):
        flags = [name for name in raw if name in ("COMPLETING", "CONFIGURING")]
        return flags[0] if flags else (raw[0] if raw else "UNKNOWN")
    return str(raw)


def _expand_output_path(pattern: str, job_id: int, name: str, user: str) -> str:
    """The job's StdOut path with the replacement symbols we use filled in (%j, %x, %u)."""
    replacements = {"j": str(job_id), "x": name, "u": user, "%": "%"}
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "%" and index + 1 < len(pattern) and pattern[index + 1] in replacements:
            out.append(replacements[pattern[index + 1]])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def job_from_json(data: Mapping) -> JobInfo:
    job_id = int(data["job_id"])
    name = str(data.get("name", ""))
    return JobInfo(
        job_id=job_id,
        name=name,
        partition=str(data.get("partition", "")),
        state=_state_name(data.get("job_state", "UNKNOWN")),
        wait_status=int(data.get("exit_code") or 0),
        labels=labels_from_comment(str(data.get("comment", ""))),
        output_path=_expand_output_path(
            str(data.get("standard_output", "")), job_id, name, str(data.get("user_name", ""))
        ),
        state_reason=str(data.get("state_reason", "")),
        cpus=int(data.get("cpus") or 0),
        gpus=_gpus_of(str(data.get("tres_per_node") or "")),
    )


def _gpus_of(tres_per_node: str) -> int:
    """`gres:gpu:3` (or `gres/gpu:tesla:3`) -> 3: GPUs per node, and a job here has one
    node (GPUs are not in `tres_alloc_str` unless accounting tracks them)."""
    for item in tres_per_node.split(","):
        parts = item.replace("/", ":").split(":")  # gres, gpu, [type,] count
        if len(parts) >= 3 and parts[1] == "gpu" and parts[-1].isdigit():
            return int(parts[-1])
    return 0


def output_path(output_dir: str, name: str) -> str:
    """Where a job writes its output: one file per job id under the runtime's directory."""
    return str(Path(output_dir) / f"{name}-%j.out")


class SlurmClient:
    """The client commands against one `slurm.conf`."""

    def __init__(self, conf: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.conf = conf
        self.timeout = timeout

    def _env(self) -> dict[str, str]:
        return {
            "SLURM_CONF": self.conf,
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
        }

    def _run(self, argv: list[str], *, stdin: str | None = None) -> str:
        try:
            result = subprocess.run(
                argv,
                input=stdin,
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SlurmUnavailable(f"{argv[0]} timed out after {self.timeout:.0f}s") from exc
        except OSError as exc:  # the command is missing or not executable
            raise SlurmUnavailable(f"{argv[0]}: {exc}") from exc
        if result.returncode != 0:
            message = _clean_message(result.stderr or result.stdout) or f"exit {result.returncode}"
            if any(marker in message for marker in UNREACHABLE_MARKERS):
                raise SlurmUnavailable(message)
            raise SlurmRejected(message)
        return result.stdout

    def submit(self, spec: JobSpec) -> int:
        """Submit a batch job; its id. The script carries the environment, quoted for the
        shell, and the job gets nothing from ours (`--export=NONE`)."""
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={spec.name}",
            f"--partition={spec.partition}",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={spec.cpus}",
            f"--output={output_path(spec.output_dir, spec.name)}",
            f"--chdir={spec.output_dir}",
            "--export=NONE",
            f"--comment={labels_to_comment(spec.labels)}",
        ]
        if spec.memory_mb:
            argv.append(f"--mem={spec.memory_mb}M")
        if spec.gpus:
            argv.append(f"--gres=gpu:{spec.gpus}")
        if spec.priority is not None:
            argv.append(f"--priority={spec.priority}")
        out = self._run(argv, stdin=batch_script(spec.command, spec.env))
        # --parsable prints "id" or "id;cluster".
        return int(out.strip().split(";")[0])

    def jobs(self) -> list[JobInfo]:
        """Every job the controller knows (finished ones until MinJobAge). `squeue --json`
        ignores -j, -t and friends in 22.05, so callers filter the list themselves."""
        data = json.loads(self._run(["squeue", "--json"]))
        # With the controller down, squeue waits ~10 s, then exits 0 with an error inside.
        errors = [e for e in data.get("errors", []) if e]
        if errors:
            details = "; ".join(f"{e.get('source')}: {e.get('description')}" for e in errors)
            raise SlurmUnavailable(f"squeue: {details}")
        return [job_from_json(job) for job in data.get("jobs", [])]

    def job(self, job_id: int) -> JobInfo | None:
        return next((job for job in self.jobs() if job.job_id == job_id), None)

    def labelled_jobs(self, labels: Mapping[str, str]) -> list[JobInfo]:
        """The jobs whose comment carries every one of these labels."""
        return [
            job
            for job in self.jobs()
            if all(job.labels.get(key) == value for key, value in labels.items())
        ]

    def ping(self) -> None:
        """Raise `SlurmUnavailable` unless the controller answers."""
        # `scontrol ping` answers at once, exit 1 and "... is DOWN" when it is down.
        try:
            answer = self._run(["scontrol", "ping"])
        except SlurmRejected as error:
            raise SlurmUnavailable(str(error)) from error
        if "is UP" not in answer:
            raise SlurmUnavailable(_clean_message(answer))

    def _scancel(self, job_ids: Iterable[int], *options: str) -> None:
        ids = [str(job_id) for job_id in job_ids]
        if not ids:
            return
        try:
            self._run(["scancel", *options, *ids])
        except SlurmRejected as error:
            # Ended (or ending) meanwhile: what was asked is done.
            if not any(marker in str(error) for marker in ALREADY_ENDED_MARKERS):
                raise

    def cancel(self, job_ids: Iterable[int]) -> None:
        """Cancel: Slurm sends TERM to the whole job, then KILL after its KillWait."""
        self._scancel(job_ids)

    def signal(self, job_ids: Iterable[int], signal_name: str) -> None:
        """Send a signal to the batch shell and every step of running jobs (`--full`),
        without cancelling them. Not for pending jobs (scancel then waits for them)."""
        self._scancel(job_ids, "--full", f"--signal={signal_name}")

    def kill(self, job_ids: Iterable[int]) -> None:
        """Cancel with KILL at once, to every step (no KillWait)."""
        self._scancel(job_ids, "--signal=KILL")

    @staticmethod
    def read_output(path: str, *, max_bytes: int = 1 << 20) -> str:
        """The end of a job's output file (on a file system this service shares with the
        nodes); empty when the job has not written it yet."""
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - max_bytes))
                return handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""


def _clean_message(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines)
