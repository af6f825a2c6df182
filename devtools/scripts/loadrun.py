#!/usr/bin/env python3
"""The load run (docs/benchmarks.md): a real stack on loopback under 16 concurrent clients.

    .venv/bin/python devtools/scripts/loadrun.py            # 16 clients, 4 clusters
    .venv/bin/python devtools/scripts/loadrun.py --create-ops 60 --lifecycle-ops 120

Starts gunicorn (2 workers), 2 RQ workers and rqcron against a fresh PostgreSQL
database (`hv_load`) and Redis database 5, then measures the start latency on the idle
stack, three rounds of a trivial authenticated GET phase followed by a create phase
(each round on fresh clusters), and a lifecycle phase (creates, completions, failures,
cancellations), and ends with the audit after the queue drains and a safety-net pass.
Exit code 0 only if the bar holds: 0 5xx, audit clean, no lost deployment,
create-and-schedule throughput >= 50% of the GET's over all rounds.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import _common


def main() -> int:
    _common.python_of_the_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    _common.stack_arguments(parser, database="hv_load")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--get-ops", type=int, default=60, help="GETs per client and round")
    parser.add_argument("--create-ops", type=int, default=30, help="creates per client and round")
    parser.add_argument("--rounds", type=int, default=3, help="GET phase + create phase")
    parser.add_argument("--latency-samples", type=int, default=10, help="idle start latency")
    parser.add_argument("--lifecycle-ops", type=int, default=60, help="mixed ops per client")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from devtools.bench.runs import LoadShape, load_run
    from devtools.bench.stack import Stack

    shape = LoadShape(
        clients=args.clients,
        clusters=args.clusters,
        get_ops=args.get_ops,
        create_ops=args.create_ops,
        lifecycle_ops=args.lifecycle_ops,
        rounds=args.rounds,
        latency_samples=args.latency_samples,
        seed=args.seed,
    )
    with Stack(_common.stack_config(args)) as stack:
        result = load_run(stack, shape)
    if not args.keep:
        shutil.rmtree(stack.dir, ignore_errors=True)
    failures = []
    if result.server_errors:
        failures.append(f"{result.server_errors} 5xx")
    if not result.audit_clean:
        failures.append("audit not clean")
    if result.lost:
        failures.append(f"lost deployments {result.lost}")
    if result.ratio < 0.5:
        failures.append(f"create-and-schedule at {result.ratio:.0%} of the GET's")
    print("BAR: " + ("met" if not failures else "NOT met: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
