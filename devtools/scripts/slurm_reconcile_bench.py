#!/usr/bin/env python3
"""Reconciliation time with N deployments running on a Slurm runtime (docs/benchmarks.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hv_slurmbench \\
        .venv/bin/python devtools/scripts/slurm_reconcile_bench.py [--deployments 200]

Starts a private Slurm (devtools/slurm.py; root), migrates the given database (recreate
it first: the script adds rows), registers a slurm runtime and one cluster of N CPUs,
creates N one-CPU deployments through the services (the embedded lifecycle submits N
batch jobs: 4 run on the node, the rest wait in Slurm), then times
`scheduler.lifecycle.reconcile_runtime` (one `squeue --json`, the comparison with the
database) a few times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypervisor.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["RUNTIME_WATCH_SECONDS"] = "0"
    import django

    django.setup()
    from django.core.management import call_command

    from devtools.slurm import SlurmCluster

    call_command("migrate", verbosity=0)
    cluster = SlurmCluster.create()
    try:
        cluster.start()
        with tempfile.TemporaryDirectory(prefix="hv-slurmbench-") as output_dir:
            print(run(cluster, output_dir, args.deployments, args.rounds))
        cluster.cancel_all()
    finally:
        cluster.stop()
    return 0


def run(slurm, output_dir: str, count: int, rounds: int) -> str:
    from accounts.tests.factories import UserFactory
    from clusters.models import Cluster
    from clusters.tests.factories import ClusterFactory
    from deployments.models import Deployment, Status
    from deployments.services import DeploymentSpec, deployment_create
    from hypervisor.resources import Resources
    from runtime.services import RuntimeSpec, runtime_add
    from scheduler.lifecycle import reconcile_runtime

    runtime = runtime_add(
        spec=RuntimeSpec(
            name=f"bench-{os.getpid()}",
            kind="slurm",
            endpoint=str(slurm.conf),
            options={"partition": slurm.partition, "output_dir": output_dir},
            credentials={},
        )
    )
    cluster = ClusterFactory(capacity_cpu=count * 1000, capacity_ram_mb=count * 16, capacity_gpu=0)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
    cluster.refresh_from_db()
    actor = UserFactory()
    began = time.monotonic()
    for index in range(count):
        spec = DeploymentSpec(
            name=f"b{index}",
            image="registry.example.com/unused:1",
            resources=Resources(1000, 16, 0),
            command=["sleep", "600"],
        )
        deployment_create(actor=actor, cluster=cluster, spec=spec)
    created = time.monotonic() - began
    running = Deployment.objects.filter(cluster=cluster, status=Status.RUNNING).count()
    seconds = []
    for _ in range(rounds):
        began = time.monotonic()
        result = reconcile_runtime(runtime_id=runtime.pk)
        seconds.append(time.monotonic() - began)
        assert not (result.lost or result.ended or result.unreachable), result
    return (
        f"{count} deployments created and submitted in {created:.1f} s; {running} running\n"
        f"reconcile_runtime: n={rounds} p50 {statistics.median(seconds) * 1000:.0f} ms "
        f"max {max(seconds) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
