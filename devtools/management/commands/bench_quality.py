"""`manage.py bench_quality`: each policy's placements against the exact optimum.

    .venv/bin/python manage.py bench_quality --instances 1000 --seed 1

Seeded random instances (10 to 40 deployments, running and waiting, skewed shapes, 1 to 5
priority levels) are planned with `planner.plan` under `fifo` and `pack`, and compared
with the optimum of API.md's `pack` objective from an integer program (scipy's `milp`).
The model, in particular how "never stopped for the same or a lower priority" is encoded,
is in `devtools/bench/quality.py`'s docstring. Needs scipy (requirements-dev.txt); no database.

Bar (issue 6), for `pack` on 1,000 instances: equal to the optimum on >= 99% of them,
>= 99.5% of the optimum's count overall, 100% at the top priority, 0 unnecessary victims.
"""

from __future__ import annotations

import os
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.bench.benchmarks import percentile
from devtools.bench.quality import (
    PolicyFigures,
    SolverError,
    describe,
    exact_reach,
    generate,
    optimum,
)
from planner import Policy, packsearch
from planner.packsearch.exact import NODE_BUDGETS

EQUAL_BAR = 0.99
COUNT_BAR = 0.995


class Command(BaseCommand):
    help = "Compare fifo's and pack's placements with the exact optimum on random instances."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--instances", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--min-size", type=int, default=10, help="Deployments, at least.")
        parser.add_argument("--max-size", type=int, default=40, help="Deployments, at most.")
        parser.add_argument(
            "--show", type=int, default=0, help="Print the first N instances where pack differs."
        )
        parser.add_argument(
            "--instance", type=int, help="Print only this instance, its optimum and each plan."
        )
        parser.add_argument(
            "--reach-sizes",
            default="10,20,40,60,80,100",
            help="Deployment counts at which to run pack's exact search alone ('' to skip).",
        )
        parser.add_argument("--reach-instances", type=int, default=50, help="Per reach size.")

    def handle(self, *args, instances: int, seed: int, **options) -> None:
        low, high = options["min_size"], options["max_size"]
        if instances < 1 or not 1 <= low <= high:
            raise CommandError("need --instances >= 1 and 1 <= --min-size <= --max-size")
        try:
            import scipy  # noqa: F401  (only this benchmark needs it)
        except ImportError as error:
            raise CommandError(
                "bench_quality needs scipy: .venv/bin/pip install -r requirements-dev.txt"
            ) from error
        if options["instance"] is not None:
            instance = generate(seed, options["instance"], min_size=low, max_size=high)
            self.stdout.write(describe(instance, optimum(instance.snapshot)))
            return
        self.stdout.write(
            f"bench_quality: {instances} instances, seed {seed}, sizes {low}-{high}; "
            f"{os.cpu_count()} cores, load average {_load()}"
        )
        figures, solver_seconds = self._run(instances, seed, low, high)
        self.stdout.write(
            f"optimum by milp: {solver_seconds:.1f} s, "
            f"{solver_seconds / instances * 1000:.1f} ms per instance"
        )
        for fig in figures.values():
            self._report(fig)
        self._show(figures[Policy.PACK], seed, low, high, options["show"])
        sizes = [int(x) for x in options["reach_sizes"].split(",") if x.strip()]
        if sizes:
            self._reach(seed, sizes, options["reach_instances"])
        self.stdout.write(f"load average after: {_load()}")

    def _run(self, instances: int, seed: int, low: int, high: int):
        figures = {policy: PolicyFigures(policy) for policy in Policy}
        solver_seconds = 0.0
        for index in range(instances):
            instance = generate(seed, index, min_size=low, max_size=high)
            began = time.perf_counter()
            try:
                best = optimum(instance.snapshot)
            except SolverError as error:
                raise CommandError(f"instance {index}: {error}") from error
            solver_seconds += time.perf_counter() - began
            for fig in figures.values():
                fig.add(instance, best)
        return figures, solver_seconds

    def _report(self, fig: PolicyFigures) -> None:
        equal = fig.equal / fig.instances
        count = fig.count / fig.optimum_count
        top = fig.top / fig.optimum_top
        write = self.stdout.write
        write(f"\n{fig.policy.value}:")
        write(f"  equal to the optimum at every level: {fig.equal}/{fig.instances} ({equal:.1%})")
        write(
            f"  ... and equal in utilization too (the whole objective): "
            f"{fig.equal_utilization}/{fig.instances}"
        )
        write(f"  count vs optimum: {fig.count}/{fig.optimum_count} ({count:.2%})")
        write(f"  top priority vs optimum: {fig.top}/{fig.optimum_top} ({top:.2%})")
        write(f"  unnecessary victims: {fig.unnecessary_victims}")
        write(f"  utilization vs optimum: {float(fig.utilization / fig.optimum_utilization):.2%}")
        write(
            f"  plan time: p50 {percentile(fig.seconds, 50) * 1000:.2f} ms, "
            f"p99 {percentile(fig.seconds, 99) * 1000:.2f} ms, "
            f"max {max(fig.seconds) * 1000:.2f} ms"
        )
        write(
            f"  below the optimum: {fig.below}; above it: {fig.above}; "
            f"outcomes outside the model: {fig.outside_model}"
        )
        if fig.mismatches:
            shown = ", ".join(map(str, fig.mismatches[:10]))
            write(f"  first instances that differ: {shown}")
        if fig.utilization_below:
            shown = ", ".join(map(str, fig.utilization_below[:10]))
            write(f"  first instances with the same counts but less utilization: {shown}")
        if fig.policy is Policy.PACK:
            bars = [
                (f"equal on >= {EQUAL_BAR:.0%}", equal >= EQUAL_BAR),
                (f">= {COUNT_BAR:.1%} of the count", count >= COUNT_BAR),
                ("100% at the top priority", fig.top == fig.optimum_top),
                ("0 unnecessary victims", fig.unnecessary_victims == 0),
            ]
            for name, met in bars:
                write(f"  bar {name}: {'met' if met else 'NOT met'}")

    def _show(self, fig: PolicyFigures, seed: int, low: int, high: int, limit: int) -> None:
        for index in fig.mismatches[:limit]:
            instance = generate(seed, index, min_size=low, max_size=high)
            self.stdout.write("\n" + describe(instance, optimum(instance.snapshot)))

    def _reach(self, seed: int, sizes: list[int], per_size: int) -> None:
        reaches = exact_reach(seed, sizes, per_size)
        self.stdout.write(
            f"\npack's exact search alone (packsearch.exact; plan() uses it up to "
            f"{packsearch.EXACT_LIMIT} deployments in play, budget "
            f"{NODE_BUDGETS} nodes):"
        )
        largest, proven_so_far = None, True
        for reach in sorted(reaches, key=lambda r: r.size):
            if not reach.seconds:
                continue
            share = reach.proven / len(reach.seconds)
            proven_so_far = proven_so_far and share == 1
            if proven_so_far:
                largest = (reach.size, max(reach.waiting))
            self.stdout.write(
                f"  {reach.size:3d} deployments (waiting up to {max(reach.waiting)}, in play up "
                f"to {max(reach.in_play)}): proven {reach.proven}/{len(reach.seconds)}, "
                f"p50 {percentile(reach.seconds, 50) * 1000:.1f} ms, "
                f"p99 {percentile(reach.seconds, 99) * 1000:.1f} ms"
            )
        if largest:
            self.stdout.write(
                f"  every search proven within budget up to {largest[0]} deployments "
                f"({largest[1]} waiting)"
            )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
