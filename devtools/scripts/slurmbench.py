#!/usr/bin/env python3
"""Slurm runtime figures (docs/benchmarks.md), through the `slurm` backend, on a private
idle Slurm (devtools/slurm.py: munged, slurmctld, one slurmd; needs root and Debian's Slurm).

    .venv/bin/python devtools/scripts/slurmbench.py [--rounds 20] [--jobs 200]

- submit -> running: `start()` until `state()` says running (Slurm allocated the node), and
  until the job's first output line (its command really runs);
- stop -> gone: `stop(grace_seconds=10)` of a running job that ends on TERM, until it
  returns (Slurm reports the job gone: not COMPLETING any more);
- listing with N jobs known to Slurm (4 running, the rest pending): `list_workloads()` of
  this installation's label, i.e. the runtime half of a reconciliation pass, and the bare
  `squeue --json` under it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from devtools.slurm import SlurmCluster  # noqa: E402
from runtime.backends.base import Phase, WorkloadSpec  # noqa: E402
from runtime.backends.slurm_jobs import SlurmBackend  # noqa: E402

LABELS = {"io.hypervisor.installation": "bench"}


def spec(name: str, command: list[str]) -> WorkloadSpec:
    return WorkloadSpec(
        name=name,
        image="unused",
        labels={**LABELS, "io.hypervisor.deployment": name.rsplit("-", 1)[-1]},
        command=tuple(command),
        cpu_millicores=1000,
        ram_mb=16,
    )


def wait(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.01)


def summary(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"{label:<34} n={len(seconds):<4} p50 {statistics.median(seconds) * 1000:7.0f} ms"
        f"   p99 {p99 * 1000:7.0f} ms   max {max(seconds) * 1000:7.0f} ms"
    )


def lifecycle(backend: SlurmBackend, rounds: int) -> list[str]:
    running, first_line, gone = [], [], []
    for index in range(rounds):
        name = f"hv-bench-{index}"
        started = time.monotonic()
        backend.start(spec(name, ["/bin/sh", "-c", "echo up; exec sleep 300"]))
        wait(lambda name=name: backend.state(name).phase == Phase.RUNNING)
        running.append(time.monotonic() - started)
        wait(lambda name=name: backend.logs(name, tail=1) == ["up"])
        first_line.append(time.monotonic() - started)
        stopping = time.monotonic()
        state = backend.stop(name, grace_seconds=10)
        assert state.phase == Phase.EXITED, state
        gone.append(time.monotonic() - stopping)
    return [
        summary("submit -> running (Slurm state)", running),
        summary("submit -> first output line", first_line),
        summary("stop -> gone (ends on TERM)", gone),
    ]


def listing(backend: SlurmBackend, jobs: int, rounds: int) -> list[str]:
    for index in range(jobs):
        backend.start(spec(f"hv-many-{index}", ["sleep", "600"]))
    listed, squeue = [], []
    for _ in range(rounds):
        started = time.monotonic()
        found = backend.list_workloads(labels=LABELS)
        listed.append(time.monotonic() - started)
        started = time.monotonic()
        backend.client.jobs()
        squeue.append(time.monotonic() - started)
    assert len(found) >= jobs, len(found)
    return [
        summary(f"list_workloads, {len(found)} jobs", listed),
        summary("  of which squeue --json", squeue),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    cluster = SlurmCluster.create()
    try:
        started = time.monotonic()
        cluster.start()
        print(f"private Slurm up in {time.monotonic() - started:.2f} s (node {cluster.node})")
        with tempfile.TemporaryDirectory(prefix="hv-slurmbench-") as output_dir:
            backend = SlurmBackend(
                endpoint=str(cluster.conf),
                options={"partition": cluster.partition, "output_dir": output_dir},
                credentials={},
            )
            lines = lifecycle(backend, args.rounds) + listing(backend, args.jobs, args.rounds)
            cluster.cancel_all()
    finally:
        cluster.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
