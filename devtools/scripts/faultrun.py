#!/usr/bin/env python3
"""The fault run (docs/benchmarks.md): the load run's lifecycle while things break.

    .venv/bin/python devtools/scripts/faultrun.py

Same stack and clients as devtools/scripts/loadrun.py (database `hv_fault`, Redis database 5).
While 16 clients create, complete, fail and cancel deployments, it SIGKILLs one RQ
worker (and anything it forked) in the middle of a scheduling pass, restarts Redis
(`redis-cli shutdown nosave`: the queue and every key are lost), and restarts
PostgreSQL (every connection dropped). A supervisor restarts RQ processes that exit,
as compose's restart policy would. Afterwards, once a safety-net pass has run: the
audit must be clean, every deployment answered 201 must exist, and no 5xx may come
outside the Redis and PostgreSQL restarts (requests in flight while PostgreSQL is down
fail; nothing else may).

WARNING: it restarts this machine's shared Redis and PostgreSQL servers: any other test
run using them at that moment will see errors.
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
    args = parser.parse_args()

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
    print("BAR: " + ("met" if not failures else "NOT met: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
