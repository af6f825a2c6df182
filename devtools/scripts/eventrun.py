#!/usr/bin/env python3
"""The one-event-at-a-time run (docs/benchmarks.md): a scheduling event beside a GET.

    .venv/bin/python devtools/scripts/eventrun.py                      # both shapes, W=0,1000
    .venv/bin/python devtools/scripts/eventrun.py --shape production --waiting 0,1000

One client creates a 1-CPU top-priority deployment that fits, waits until it runs,
completes it, again and again, while W deployments wait that cannot fit; a trivial
authenticated GET is timed in the same run (devtools/bench/events.py). Shapes:
`embedded` (no Redis: every pass in the web process after its commit) and `production`
(2 gunicorn workers, 2 RQ workers, rqcron, Redis), each on a fresh PostgreSQL database.
Exit code 0 only if events/s >= 0.5x GETs/s at every W in every shape run, with no 5xx
and a clean audit.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import _common


def main() -> int:
    _common.python_of_the_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    _common.stack_arguments(parser, database="hv_events")
    parser.add_argument("--shape", choices=["embedded", "production", "both"], default="both")
    parser.add_argument("--waiting", default="0,1000", help="W values, grown in this order")
    parser.add_argument("--events", type=int, default=100, help="events per round")
    parser.add_argument("--gets", type=int, default=300, help="GETs per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--policy", choices=["fifo", "pack"], default=None)
    args = parser.parse_args()

    from devtools.bench.events import EventShape, event_run
    from devtools.bench.stack import Stack, waiting_limits

    shape = EventShape(
        waiting=tuple(int(w) for w in args.waiting.split(",")),
        events=args.events,
        gets=args.gets,
        rounds=args.rounds,
        policy=args.policy,
    )
    shapes = ["embedded", "production"] if args.shape == "both" else [args.shape]
    failures = []
    for name in shapes:
        config = _common.stack_config(
            args, embedded=name == "embedded", extra_env=waiting_limits(max(shape.waiting))
        )
        print(f"--- {name} shape")
        with Stack(config) as stack:
            results = event_run(stack, shape)
            audit = stack.audit()
        if not args.keep:
            shutil.rmtree(stack.dir, ignore_errors=True)
        print(f"audit (exit {audit.returncode}): {(audit.stdout + audit.stderr).strip()}")
        if audit.returncode:
            failures.append(f"{name}: audit not clean")
        failures += [f"{name} W={r.waiting}: ratio {r.ratio:.2f}" for r in results if r.ratio < 0.5]
    print("BAR: " + ("met" if not failures else "NOT met: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
