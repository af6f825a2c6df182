#!/usr/bin/env python3
"""The fault run (docs/benchmarks.md): the load run's lifecycle while things break.

    .venv/bin/python devtools/scripts/faultrun.py [--step all|services|docker]

Same stack and clients as devtools/scripts/loadrun.py (database `hv_fault`, Redis database 5).
While 16 clients create, complete, fail and cancel deployments, it SIGKILLs one RQ
worker (and anything it forked) in the middle of a scheduling pass, restarts Redis
(`redis-cli shutdown nosave`: the queue and every key are lost), and restarts
PostgreSQL (every connection dropped). A supervisor restarts RQ processes that exit,
as compose's restart policy would. Afterwards, once a safety-net pass has run: the
audit must be clean, every deployment answered 201 must exist, and no 5xx may come
outside the Redis and PostgreSQL restarts (requests in flight while PostgreSQL is down
fail; nothing else may).

The Docker step (`--step docker`, devtools/bench/dockerfault.py) runs a second stack with
its own Redis and a Docker runtime on a private dockerd, and SIGKILLs and restarts that
dockerd several times while starts are in flight; afterwards the audit must be clean,
nothing lost, every deployment consistent with the engine, no duplicate container and no
container running without room. It touches no shared server.

WARNING: the services step (in `all`) restarts this machine's shared Redis and PostgreSQL
servers: any other test run using them at that moment will see errors.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import _common


def main() -> int:
    _common.python_of_the_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    _common.stack_arguments(parser, database="hv_fault")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--lifecycle-ops", type=int, default=60, help="mixed ops per client")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--step", choices=["all", "services", "docker"], default="all")
    parser.add_argument("--docker-clients", type=int, default=8)
    parser.add_argument("--docker-ops", type=int, default=60, help="mixed ops per client")
    parser.add_argument("--kills", type=int, default=4, help="dockerd SIGKILLs")
    args = parser.parse_args()
    failures = []
    if args.step in ("all", "services"):
        failures += services_step(args)
    if args.step in ("all", "docker"):
        failures += docker_step(args)
    print("BAR: " + ("met" if not failures else "NOT met: " + "; ".join(failures)))
    return 1 if failures else 0


def services_step(args: argparse.Namespace) -> list[str]:
    """A worker killed mid-pass, Redis and PostgreSQL restarted, under the load."""
    from devtools.bench.runs import LoadShape, fault_run
    from devtools.bench.stack import Stack

    shape = LoadShape(clients=args.clients, lifecycle_ops=args.lifecycle_ops, seed=args.seed)
    with Stack(_common.stack_config(args)) as stack:
        result = fault_run(stack, shape)
    if not args.keep:
        shutil.rmtree(stack.dir, ignore_errors=True)
    failures = []
    if not result.audit_clean:
        failures.append("audit not clean")
    if result.lost:
        failures.append(f"lost deployments {result.lost}")
    if result.errors_outside_outages:
        failures.append(f"{result.errors_outside_outages} 5xx outside the outages")
    if len(result.faults) < 3 or any("no worker killed" in f for f in result.faults):
        failures.append("not every fault was injected")
    return failures


def docker_step(args: argparse.Namespace) -> list[str]:
    """dockerd SIGKILLed and restarted during starts, under a lifecycle load."""
    from dataclasses import replace

    from devtools.bench.dockerfault import STACK_ENV, DockerFaultShape, docker_fault_run
    from devtools.bench.stack import Stack
    from runtime.tests.engines import DockerEngine

    shape = DockerFaultShape(
        clients=args.docker_clients, ops=args.docker_ops, kills=args.kills, seed=args.seed
    )
    # Its own Redis (a private redis-server in the stack's directory), its own database.
    config = replace(
        _common.stack_config(args),
        database=f"{args.database}_docker",
        redis_url=None,
        extra_env=STACK_ENV,
    )
    with Stack(config) as stack:
        engine = DockerEngine(stack.dir / "dockerd")
        engine.directory.mkdir()
        engine.start()
        try:
            engine.build_test_image()
            result = docker_fault_run(stack, engine, shape)
        finally:
            engine.stop()
    if not args.keep:
        shutil.rmtree(stack.dir, ignore_errors=True)
    return result.failures(shape.kills)


if __name__ == "__main__":
    sys.exit(main())
