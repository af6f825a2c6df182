#!/usr/bin/env python3
"""Resident memory of the web and worker processes at a long queue (docs/benchmarks.md).

    .venv/bin/python devtools/scripts/memoryrun.py --waiting 100000

The production shape (2 gunicorn workers, 2 RQ workers of `scheduler.worker.
SchedulerWorker` with rq's scheduler, rqcron, a private Redis, a fresh PostgreSQL
database) with `--waiting` deployments waiting on one cluster (bulk-inserted), the
dashboard, its live fragment, the queue endpoint and a deployment page served by each
gunicorn worker, a change and a capacity change (a full pass) run by a worker
(devtools/bench/memory.py). Prints VmRSS and VmHWM of each process as a table.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import _common


def main() -> int:
    _common.python_of_the_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    _common.stack_arguments(parser, database="hv_memory")
    parser.set_defaults(redis_url="")  # a private redis-server
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=6, help="concurrent pairs per read")
    args = parser.parse_args()

    from devtools.bench.memory import MemoryShape, memory_run
    from devtools.bench.stack import Stack, waiting_limits

    config = _common.stack_config(
        args, safety_net_seconds=30, extra_env=waiting_limits(args.waiting)
    )
    with Stack(config) as stack:
        result = memory_run(stack, MemoryShape(args.waiting, args.requests))
    if not args.keep:
        shutil.rmtree(stack.dir, ignore_errors=True)
    print(f"worker class: {config.worker_class or 'rq default (forks a work horse per job)'}")
    print(result.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
