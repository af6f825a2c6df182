"""A private, real Slurm for the tests: munged, slurmctld and one slurmd on this machine.

Everything lives under one temporary directory (mode 0755: munged refuses a socket directory
whose parents others cannot traverse) with its own ports, node name, state and logs, so it
never meets a system Slurm or another test run. The node declares fake GPUs: character
devices made with mknod (major 195, NVIDIA's), which Slurm's gres plugin accepts where
/dev/null would not. Teardown cancels what is left, stops the daemons, then kills every
process still inside the node's cgroups (slurmstepd outlives slurmd) and removes those
cgroups: a leftover `slurm_<node>` cgroup makes the next cluster's first job fail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SLURM_COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
NODE_CPUS = 4
NODE_MEMORY_MB = 2048
NODE_GPUS = 4
KILL_WAIT_SECONDS = 2


def missing_commands() -> list[str]:
    return [cmd for cmd in SLURM_COMMANDS if shutil.which(cmd) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")


@dataclass
class SlurmCluster:
    """One controller and one compute node, configured under `root`."""

    root: Path
    node: str = field(default_factory=lambda: f"hv{secrets.token_hex(3)}")
    partition: str = "hv"
    ctld_port: int = field(default_factory=_free_port)
    slurmd_port: int = field(default_factory=_free_port)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def create(cls) -> SlurmCluster:
        root = Path(tempfile.mkdtemp(prefix="hv-slurm-"))
        root.chmod(0o755)
        cluster = cls(root=root)
        cluster._write_files()
        return cluster

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket.2"

    @property
    def jobs_dir(self) -> Path:
        """Where the jobs write their output: this machine is the only node, so the service
        reads the files back directly (a real cluster needs a shared file system here)."""
        return self.root / "jobs"

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    # -- files ------------------------------------------------------------------------------

    def _write_files(self) -> None:
        for sub in ("etc", "munge", "state", "spool", "log", "dev", "jobs"):
            (self.root / sub).mkdir(mode=0o755)
        (self.root / "jobs").chmod(0o777)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        for index in range(NODE_GPUS):
            os.mknod(self.root / "dev" / f"gpu{index}", 0o666 | 0o020000, os.makedev(195, index))
        (self.root / "etc" / "slurm.conf").write_text(self._slurm_conf())
        (self.root / "etc" / "cgroup.conf").write_text(
            "CgroupPlugin=cgroup/v1\nConstrainCores=yes\nConstrainRAMSpace=yes\n"
            "ConstrainSwapSpace=yes\nConstrainDevices=no\n"
        )
        (self.root / "etc" / "gres.conf").write_text(
            f"NodeName={self.node} Name=gpu File={self.root}/dev/gpu[0-{NODE_GPUS - 1}]\n"
        )

    def _slurm_conf(self) -> str:
        root = self.root
        return "\n".join(
            [
                f"ClusterName={self.node}",
                "SlurmctldHost=localhost(127.0.0.1)",
                f"SlurmctldPort={self.ctld_port}",
                f"SlurmdPort={self.slurmd_port}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={self.munge_socket}",
                f"StateSaveLocation={root}/state",
                f"SlurmdSpoolDir={root}/spool",
                f"SlurmctldPidFile={root}/slurmctld.pid",
                f"SlurmdPidFile={root}/slurmd.pid",
                f"SlurmctldLogFile={root}/log/slurmctld.log",
                f"SlurmdLogFile={root}/log/slurmd.log",
                "ProctrackType=proctrack/cgroup",
                "TaskPlugin=task/cgroup,task/affinity",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_CPU_Memory",
                "SchedulerType=sched/backfill",
                "SchedulerParameters=batch_sched_delay=0,bf_interval=1",
                "PriorityType=priority/basic",
                "AccountingStorageType=accounting_storage/none",
                "JobAcctGatherType=jobacct_gather/none",
                "JobCompType=jobcomp/none",
                "MpiDefault=none",
                "ReturnToService=2",
                "SlurmdParameters=config_overrides",
                "MinJobAge=600",
                f"KillWait={KILL_WAIT_SECONDS}",
                "SlurmctldTimeout=30",
                "SlurmdTimeout=30",
                "GresTypes=gpu",
                f"NodeName={self.node} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 "
                f"CPUs={NODE_CPUS} RealMemory={NODE_MEMORY_MB} Gres=gpu:{NODE_GPUS} State=UNKNOWN",
                f"PartitionName={self.partition} Nodes={self.node} Default=YES "
                "MaxTime=INFINITE State=UP",
                "",
            ]
        )

    # -- daemons ----------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.root / "log" / f"{name}.stdout").open("ab")
        self._procs[name] = subprocess.Popen(
            argv,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _run(self, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self) -> None:
        munge = self.root / "munge"
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                f"--socket={self.munge_socket}",
                f"--key-file={munge / 'munge.key'}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
        _wait_until(self.munge_socket.exists, timeout=10, what="munged's socket")
        self.start_controller(clear_state=True)
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node])
        _wait_until(self._node_idle, timeout=30, what=f"node {self.node} to be idle")

    def start_controller(self, *, clear_state: bool = False) -> None:
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", *(["-c"] if clear_state else [])])
        _wait_until(self.controller_answers, timeout=20, what="slurmctld to answer")

    def stop_controller(self) -> None:
        self._stop("slurmctld")

    def controller_answers(self) -> bool:
        return self._run("scontrol", "ping", timeout=5).stdout.count("UP") > 0

    def _node_idle(self) -> bool:
        state = self._run("sinfo", "-h", "-N", "-n", self.node, "-o", "%T", timeout=5)
        return state.stdout.strip() == "idle"

    def _stop(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def cancel_all(self) -> None:
        """Cancel every job of this cluster and wait until none is left on the node."""
        self._run("scancel", f"--partition={self.partition}")
        with contextlib.suppress(TimeoutError):
            _wait_until(
                lambda: not self._run("squeue", "-h", "-t", "PD,R,CG", "-o", "%i").stdout.strip(),
                timeout=KILL_WAIT_SECONDS + 15,
                what="the jobs to end",
            )

    def stop(self) -> None:
        if "slurmctld" in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.cancel_all()
        for name in ("slurmd", "slurmctld", "munged"):
            self._stop(name)
        self._remove_cgroups()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- leftovers --------------------------------------------------------------------------

    def job_cgroup(self, controller: str, job_id: int) -> Path:
        return CGROUP_ROOT / controller / f"slurm_{self.node}" / "uid_0" / f"job_{job_id}"

    def _node_cgroups(self) -> list[Path]:
        return [path for path in CGROUP_ROOT.glob(f"*/slurm_{self.node}") if path.is_dir()]

    def _remove_cgroups(self) -> None:
        """Kill every process left in this node's cgroups (slurmstepd and job tasks), by pid,
        then remove the cgroups deepest first."""
        for top in self._node_cgroups():
            for procs in top.rglob("cgroup.procs"):
                for pid in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
        for top in self._node_cgroups():
            for directory in sorted(
                (path for path in top.rglob("*") if path.is_dir()),
                key=lambda path: len(path.parts),
                reverse=True,
            ):
                self._rmdir(directory)
            self._rmdir(top)

    @staticmethod
    def _rmdir(directory: Path) -> None:
        # A killed task leaves its cgroup busy for a moment.
        for _ in range(50):
            try:
                directory.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)
