#!/usr/bin/env python3
"""The churn of concurrent clients on one cluster (docs/benchmarks.md, issue 14).

    .venv/bin/python devtools/scripts/churnrun.py
    .venv/bin/python devtools/scripts/churnrun.py --clients 8 --changes 40 --gets 60 --rounds 3

The production shape (2 gunicorn workers, 2 RQ workers with rq's scheduler, rqcron, a
private Redis, a fresh PostgreSQL database). 8 concurrent clients each create 1-CPU
deployments on one 8-CPU cluster or complete one of their own running ones
(devtools/bench/churn.py); rounds alternate with the same clients doing the trivial
authenticated GET. Prints changes/s, GETs/s and their ratio (the bar: >= 0.5), the 5xx
count and `manage.py audit`. Exit code 0 only with a clean audit, no 5xx and the bar met.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import _common


def main() -> int:
    _common.python_of_the_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    _common.stack_arguments(parser, database="hv_churn")
    parser.set_defaults(redis_url="")  # a private redis-server
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--changes", type=int, default=40, help="per client and round")
    parser.add_argument("--gets", type=int, default=60, help="per client and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from devtools.bench.churn import ChurnShape, churn_run
    from devtools.bench.stack import Stack, waiting_limits

    shape = ChurnShape(args.clients, args.changes, args.gets, args.rounds)
    most = args.clients * args.changes * args.rounds
    config = _common.stack_config(args, safety_net_seconds=30, extra_env=waiting_limits(most))
    with Stack(config) as stack:
        result = churn_run(stack, shape)
        audit = stack.audit()
    if not args.keep:
        shutil.rmtree(stack.dir, ignore_errors=True)
    print(f"audit (exit {audit.returncode}): {(audit.stdout + audit.stderr).strip()}")
    failures = []
    if audit.returncode:
        failures.append("audit not clean")
    if result.server_errors or result.logged_5xx:
        failures.append(f"{max(result.server_errors, result.logged_5xx)} 5xx")
    if result.ratio < 0.5:
        failures.append(f"ratio {result.ratio:.2f} < 0.5")
    print("BAR: " + ("met" if not failures else "NOT met: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
