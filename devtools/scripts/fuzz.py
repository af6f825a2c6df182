#!/usr/bin/env python3
"""The long fuzz run (docs/benchmarks.md): schemathesis against the live server's schema.

    .venv/bin/python devtools/scripts/fuzz.py                     # >= 1,000 cases
    .venv/bin/python devtools/scripts/fuzz.py --max-examples 100 --seed 3

Starts the same stack as the load run (its own database `hv_fuzz`, Redis database 6),
signs up a user with an organization, a cluster and a deployment, and runs every phase
of schemathesis (examples, coverage, fuzzing, stateful) with that session and the CSRF
header; then sends the hardening probes (issue 16's hostile requests). Exit code 0 only
with 0 server errors, 0 answers that contradict the schema and every probe answered right.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import _common


def main() -> int:
    _common.python_of_the_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    _common.stack_arguments(parser, database="hv_fuzz")
    parser.set_defaults(redis_url="redis://127.0.0.1:6379/6")
    parser.add_argument("--max-examples", type=int, default=60, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from devtools.bench.fuzz import run_hardening_probes, run_schemathesis
    from devtools.bench.stack import Stack

    with Stack(_common.stack_config(args)) as stack:
        result = run_schemathesis(stack.url, max_examples=args.max_examples, seed=args.seed)
        probes = run_hardening_probes(stack.url)
        errors_logged = stack.count_5xx_in_logs()
    print(result.output)
    for probe in probes:
        verdict = "ok" if probe.right else "WRONG"
        print(f"probe {probe.what}: {probe.status} in {probe.seconds:.3f} s, {verdict}")
    if not args.keep:
        shutil.rmtree(stack.dir, ignore_errors=True)
    print(f"cases: {result.cases}; 5xx in the server's request log: {errors_logged}")
    ok = (
        result.passed
        and result.cases >= 1000
        and errors_logged == 0
        and all(probe.right for probe in probes)
    )
    print("BAR: " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
