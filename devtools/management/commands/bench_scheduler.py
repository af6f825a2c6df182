"""`manage.py bench_scheduler`: scheduling passes per second, pass latency, decisions per
second, on PostgreSQL, for 100, 1,000 and 10,000 waiting deployments on one cluster.

Run it against a dedicated database (it creates, then deletes, its own organization and
cluster, but its passes compete with anything else running there):

    createdb -h 127.0.0.1 -U postgres hv_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/hv_bench
    SECRET_KEY=bench DEBUG=false .venv/bin/python manage.py migrate
    SECRET_KEY=bench DEBUG=false .venv/bin/python manage.py bench_scheduler

Targets (issue 14; issue 3 asked 500 decisions/s): a pass over 1,000 waiting under 50 ms
at p99; at least 4,000 decisions (starts + preemptions) per second of pass time, batched
(a churn pass decides every change since the last one). See docs/benchmarks.md for recorded figures.
"""

from __future__ import annotations

import gc
import logging
import os
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from devtools.bench.benchmarks import PassFigures, Timings, bench_passes, bench_planner, workload
from planner import Policy

PASS_P99_TARGET_MS = 50.0  # at 1,000 waiting
DECISIONS_TARGET = 4000.0  # per second of pass time (issue 14)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise CommandError(f"--sizes takes comma-separated integers, not {text!r}") from error
    if not sizes or min(sizes) < 1:
        raise CommandError("--sizes needs at least one positive size")
    return sizes


class Command(BaseCommand):
    help = (
        "Benchmark the scheduling pass on PostgreSQL (steady and churn) and the pure "
        "planner (fifo and pack) for several queue lengths; prints the figures."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sizes", type=_sizes, default=[100, 1000, 10000], help="Waiting deployments."
        )
        parser.add_argument("--passes", type=int, default=100, help="Timed passes per case.")
        parser.add_argument("--seed", type=int, default=1, help="Seed of the workload.")
        parser.add_argument(
            "--churn",
            type=_sizes,
            default=[5, 50],
            help="Completions and arrivals (each) between two churn passes; a list runs "
            "one churn case per value.",
        )
        parser.add_argument(
            "--policy",
            choices=[p.value for p in Policy],
            default=Policy.FIFO.value,
            help="The bench cluster's policy for the database passes.",
        )
        parser.add_argument(
            "--skip-db", action="store_true", help="Only the pure planner (any database)."
        )
        parser.add_argument(
            "--profile", action="store_true", help="cProfile the churn passes; print the top."
        )
        parser.add_argument(
            "--freeze-gc",
            action="store_true",
            help="gc.freeze() the start-up heap first (what a worker could do after Django "
            "starts): the cyclic collector then stops rescanning it, which is most of the p99.",
        )

    def handle(self, *args, sizes: list[int], passes: int, seed: int, **options) -> None:
        if passes < 1:
            raise CommandError("--passes must be at least 1")
        skip_db = options["skip_db"]
        if not skip_db and connection.vendor != "postgresql":
            raise CommandError(
                f"bench_scheduler measures passes on PostgreSQL, and this database is "
                f"{connection.vendor}. Set DATABASE_URL to a dedicated PostgreSQL database, "
                f"e.g. createdb -h 127.0.0.1 -U postgres hv_bench; "
                f"DATABASE_URL=postgres://postgres@127.0.0.1:5432/hv_bench manage.py migrate; "
                f"or pass --skip-db for the pure planner only."
            )
        if options["freeze_gc"]:
            gc.collect()
            gc.freeze()
        self._header(sizes=sizes, passes=passes, seed=seed, churn=options["churn"])
        # Each pass that decides something logs a line at INFO: thousands of them would
        # bury the figures.
        pass_logger = logging.getLogger("scheduler.services")
        level = pass_logger.level
        pass_logger.setLevel(logging.WARNING)
        try:
            self._sizes(sizes, passes=passes, seed=seed, skip_db=skip_db, options=options)
        finally:
            pass_logger.setLevel(level)
        self.stdout.write(f"\nload average after: {_load()}")

    def _sizes(self, sizes: list[int], *, passes: int, seed: int, skip_db: bool, options) -> None:
        for size in sizes:
            load = workload(waiting=size, seed=seed)
            self.stdout.write(
                f"\n== {size} waiting, {len(load.running)} running "
                f"(capacity 128 CPU / 512 GiB / 8 GPU) =="
            )
            self._planner(load, passes=passes, seed=seed, churns=options["churn"])
            if not skip_db:
                figures = bench_passes(
                    load,
                    policy=Policy(options["policy"]),
                    passes=passes,
                    seed=seed,
                    churns=options["churn"],
                    profile=options["profile"],
                )
                self._passes(size, figures, policy=options["policy"])

    def _header(self, *, sizes: list[int], passes: int, seed: int, churn: list[int]) -> None:
        if settings.DEBUG:
            self.stderr.write("warning: DEBUG is on; Django logs every query and passes slow down")
        self.stdout.write(
            f"bench_scheduler: sizes {sizes}, {passes} passes per case, seed {seed}, "
            f"churn {churn} (completions and as many arrivals per pass); "
            f"database {connection.vendor}; {os.cpu_count()} cores, load average {_load()}; "
            f"{gc.get_freeze_count()} objects frozen out of the cyclic GC"
        )

    def _planner(self, load, *, passes: int, seed: int, churns: list[int]) -> None:
        for policy in Policy:
            began = time.perf_counter()
            results = bench_planner(load, policy=policy, passes=passes, seed=seed, churns=churns)
            self.stdout.write(f"planner {policy.value} ({time.perf_counter() - began:.1f} s):")
            for situation, timings in results.items():
                self.stdout.write(f"  {situation:<8} {_line(timings)}")

    def _passes(self, size: int, figures: PassFigures, *, policy: str) -> None:
        self.stdout.write(
            f"pass on PostgreSQL ({policy}): first pass {figures.settle_seconds * 1000:.0f} ms "
            f"({figures.settle_decisions} decisions, writes every queue reason)"
        )
        self.stdout.write(f"  steady   {_line(figures.steady)}")
        for churn, timings in figures.churn.items():
            self.stdout.write(f"  churn {churn:<2} {_line(timings)}")
            self.stdout.write(
                f"           {timings.decisions} decisions in {len(timings.seconds)} passes: "
                f"{timings.decisions_per_second:.0f} decisions/s of pass time "
                f"({timings.decisions / sum(timings.cpu_seconds):.0f} per CPU second of this "
                "process)"
            )
        if size == 1000:
            cases = [("steady", figures.steady)]
            cases += [(f"churn {c}", t) for c, t in figures.churn.items()]
            for name, timings in cases:
                verdict = "met" if timings.p99_ms < PASS_P99_TARGET_MS else "NOT met"
                self.stdout.write(
                    f"  target p99 < {PASS_P99_TARGET_MS:.0f} ms at 1,000 waiting ({name}): "
                    f"{verdict}"
                )
            best = max(t.decisions_per_second for t in figures.churn.values())
            verdict = "met" if best >= DECISIONS_TARGET else "NOT met"
            self.stdout.write(
                f"  target >= {DECISIONS_TARGET:.0f} decisions/s (best churn case, "
                f"{best:.0f}): {verdict}"
            )
        if figures.profile:
            self.stdout.write(figures.profile)


def _line(timings: Timings) -> str:
    decisions = timings.decisions / len(timings.seconds)
    return (
        f"{timings.per_second:7.1f}/s  p50 {timings.p50_ms:7.2f} ms  p99 {timings.p99_ms:7.2f} ms"
        f"  (cpu p50 {timings.cpu_p50_ms:6.2f}  p99 {timings.cpu_p99_ms:6.2f})"
        f"  {decisions:5.1f} decisions each"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
