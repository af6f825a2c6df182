#!/usr/bin/env python3
"""Create -> running, idle and with another cluster busy (docs/benchmarks.md, issue 14).

    .venv/bin/python devtools/scripts/latencyrun.py
    .venv/bin/python devtools/scripts/latencyrun.py --samples 100 --streamers 8 --rate 20

The production shape (2 gunicorn workers, 2 RQ workers with rq's scheduler, rqcron, a
private Redis, a fresh PostgreSQL database). One user creates a 1-CPU deployment on an
empty 8-CPU cluster A, waits until it runs, completes it, `--samples` times: first on an
idle stack, then while `--streamers` clients create and complete deployments on cluster
B at `--rate` changes/s in all (devtools/bench/churn.py). The latency is the
deployment's `created_at` -> `started_at` (the server's clocks). The bars: p50 < 50 ms
idle, < 100 ms with B busy; exit code 0 only if both are met, with no 5xx.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys

import _common


def main() -> int:
    _common.python_of_the_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    _common.stack_arguments(parser, database="hv_latency")
    parser.set_defaults(redis_url="")  # a private redis-server
    parser.add_argument("--samples", type=int, default=100, help="per phase")
    parser.add_argument("--streamers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0, help="changes/s onto cluster B")
    args = parser.parse_args()

    from devtools.bench.churn import LatencyShape, latency_run
    from devtools.bench.stack import Stack

    shape = LatencyShape(samples=args.samples, streamers=args.streamers, rate=args.rate)
    with Stack(_common.stack_config(args, safety_net_seconds=30)) as stack:
        result = latency_run(stack, shape)
    if not args.keep:
        shutil.rmtree(stack.dir, ignore_errors=True)
    failures = []
    for name, values, bar in (("idle", result.idle_ms, 50), ("B busy", result.busy_ms, 100)):
        p50 = statistics.median(values)
        if p50 >= bar:
            failures.append(f"{name} p50 {p50:.1f} ms >= {bar} ms")
    if result.server_errors:
        failures.append(f"{result.server_errors} 5xx")
    print("BAR: " + ("met" if not failures else "NOT met: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
