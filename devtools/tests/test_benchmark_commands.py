"""Smoke tests of the benchmark commands, and the quality benchmark's oracle checked
against brute force (the oracle is what the `pack` bar is measured with)."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from clusters.models import Cluster
from deployments.models import Deployment
from devtools.bench.quality import EPOCH, brute_force, generate, optimum, violations
from hypervisor.resources import Resources
from planner import ClusterSnapshot, RunningDeployment, WaitingDeployment


def _ratio(text: str, label: str) -> tuple[int, int]:
    found = re.search(rf"{re.escape(label)}: (\d+)/(\d+)", text)
    assert found, f"no '{label}' figure in:\n{text}"
    return int(found[1]), int(found[2])


def _number(text: str, pattern: str) -> float:
    found = re.search(pattern, text)
    assert found, f"no match for {pattern!r} in:\n{text}"
    return float(found[1])


def test_bench_quality_prints_each_policys_figures():
    out = StringIO()
    call_command("bench_quality", instances=4, seed=3, reach_instances=3, stdout=out)
    text = out.getvalue()
    fifo, pack = text.split("\nfifo:\n")[1].split("\npack:\n")
    pack = pack.split("\npack's exact search")[0]
    for figures in (fifo, pack):
        equal, instances = _ratio(figures, "equal to the optimum at every level")
        assert instances == 4 and 0 <= equal <= 4
        count, best = _ratio(figures, "count vs optimum")
        top, best_top = _ratio(figures, "top priority vs optimum")
        # Nothing beats the optimum, and it runs something on these instances.
        assert 0 < count <= best and 0 < top <= best_top
        assert _number(figures, r"count vs optimum: \d+/\d+ \(([\d.]+)%\)") == pytest.approx(
            100 * count / best, abs=0.01
        )
        assert _number(figures, r"unnecessary victims: (\d+)") == 0
        assert _number(figures, r"above it: (\d+)") == 0
        assert _number(figures, r"outcomes outside the model: (\d+)") == 0
        p50 = _number(figures, r"plan time: p50 ([\d.]+) ms")
        p99 = _number(figures, r"p99 ([\d.]+) ms")
        assert 0 < p50 <= p99
    # Both policies are measured against the same optima.
    assert _ratio(fifo, "count vs optimum")[1] == _ratio(pack, "count vs optimum")[1]
    # pack's bars: on these seeded instances it reaches the optimum everywhere.
    assert _ratio(pack, "equal to the optimum at every level") == (4, 4)
    assert _ratio(pack, "count vs optimum")[0] == _ratio(pack, "count vs optimum")[1]
    assert re.findall(r"bar .*: (met|NOT met)", pack) == ["met"] * 4
    assert "bar" not in fifo  # the bars are pack's
    # The exact search's reach: each size proven on all 3 instances.
    reach = re.findall(r"^ *(\d+) deployments .*: proven (\d+)/(\d+)", text, re.MULTILINE)
    assert [int(size) for size, _, _ in reach] == [10, 20, 40, 60, 80, 100]
    assert all(proven == total == "3" for _, proven, total in reach)


@pytest.mark.django_db(transaction=True)
def test_bench_scheduler_prints_pass_figures_and_cleans_up():
    out = StringIO()
    call_command("bench_scheduler", "--sizes", "100", "--passes", "3", stdout=out)
    text = out.getvalue()
    assert re.search(r"^== 100 waiting, \d+ running \(capacity", text, re.MULTILINE), text
    rows = re.findall(
        r"^  (first|steady|churn \d+) +([\d.]+)/s +p50 +([\d.]+) ms +p99 +([\d.]+) ms"
        r".*? ([\d.]+) decisions each$",
        text,
        re.MULTILINE,
    )
    # planner fifo, planner pack: first, steady, churn 5, churn 50; the pass on
    # PostgreSQL: steady and the two churns (its first pass is a line of its own).
    cases = [case for case, *_ in rows]
    assert cases == [
        *["first", "steady", "churn 5", "churn 50"] * 2,
        "steady",
        "churn 5",
        "churn 50",
    ]
    for case, rate, p50, p99, decisions in rows:
        rate, p50, p99, decisions = float(rate), float(p50), float(p99), float(decisions)
        assert rate > 0 and 0 < p50 <= p99, (case, rate, p50, p99)
        if case == "steady":
            assert decisions == 0  # nothing changed: nothing to decide
        if case == "first":
            assert decisions > 0  # 100 waiting on an idle cluster: something starts
    first_pass = re.search(r"first pass (\d+) ms \((\d+) decisions", text)
    assert first_pass and int(first_pass[1]) > 0 and int(first_pass[2]) > 0, text
    per_second = re.findall(r"(\d+) decisions in 3 passes: (\d+) decisions/s", text)
    assert len(per_second) == 2 and all(int(n) > 0 for n, _ in per_second), text
    assert not Cluster.objects.exists() and not Deployment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_bench_growth_times_events_and_passes_and_cleans_up(settings):
    settings.USE_RQ = False  # the embedded shape it measures: decisions in the request
    out = StringIO()
    call_command("bench_growth", "--sizes", "20,60", "--events", "3", "--passes", "2", stdout=out)
    text = out.getvalue()
    for waiting in (20, 60):
        line = re.search(rf"^W={waiting}: .*$", text, re.MULTILINE)
        assert line, text
        figures = re.findall(
            r"(event|full pass|planner) p50 ([\d.]+) ms \(cpu ([\d.]+)\) p99 ([\d.]+)", line[0]
        )
        assert [name for name, *_ in figures] == ["event", "full pass", "planner"], line[0]
        for _, p50, _, p99 in figures:
            assert 0 < float(p50) <= float(p99)
    table = re.findall(
        r"^\| (event|full pass|planner) p50 \(cpu\) \|.*\| (-?[\d.]+) \| (-?[\d.]+) \|$",
        text,
        re.MULTILINE,
    )
    assert [name for name, *_ in table] == ["event", "full pass", "planner"], text
    assert not Cluster.objects.exists() and not Deployment.objects.exists()


def test_bench_growth_refuses_the_rq_shape(settings):
    settings.USE_RQ = True
    with pytest.raises(CommandError, match="embedded"):
        call_command("bench_growth", "--sizes", "10", stdout=StringIO())


def test_bench_scheduler_refuses_sqlite(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("bench_scheduler", "--sizes", "100", stdout=StringIO())


@pytest.mark.parametrize("index", range(40))
def test_the_integer_program_finds_the_brute_force_optimum(index):
    snapshot = generate(11, index, min_size=3, max_size=9).snapshot
    assert optimum(snapshot).key() == brute_force(snapshot).key()


def _cpu_snapshot(running, waiting) -> ClusterSnapshot:
    """Capacity 4 CPU; jobs given as (id, cpu cores, priority)."""
    return ClusterSnapshot(
        capacity=Resources(4000, 1024, 0),
        running=tuple(
            RunningDeployment(i, Resources(cpu * 1000, 1, 0), p, True, EPOCH, EPOCH)
            for i, cpu, p in running
        ),
        waiting=tuple(
            WaitingDeployment(i, Resources(cpu * 1000, 1, 0), p, True, EPOCH + timedelta(i))
            for i, cpu, p in waiting
        ),
        now=EPOCH + timedelta(days=30),
    )


def test_running_work_is_not_stopped_for_its_own_priority():
    # The urgent job needs 1 CPU: the lowest priority (u) goes, v keeps running. Stopping
    # v instead would let a and b start too (more at priority 1), but for v's own
    # priority: the contract forbids it, and so must the model.
    snapshot = _cpu_snapshot(
        running=[(1, 3, 1), (2, 1, 0)],  # v, u
        waiting=[(3, 1, 5), (4, 1, 1), (5, 1, 1)],  # urgent, a, b
    )
    assert violations(snapshot, frozenset({2, 3, 4, 5}))  # v swapped for a and b
    assert optimum(snapshot).running == frozenset({1, 3})
    assert brute_force(snapshot).running == frozenset({1, 3})
