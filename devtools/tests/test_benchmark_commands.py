"""Smoke tests of the two benchmark commands, and the quality benchmark's oracle checked
against brute force (the oracle is what the `pack` bar is measured with)."""

from __future__ import annotations

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


def test_bench_quality_prints_each_policys_figures():
    out = StringIO()
    call_command("bench_quality", instances=4, seed=3, reach_instances=3, stdout=out)
    text = out.getvalue()
    for policy in ("fifo:", "pack:"):
        assert policy in text
    for figure in (
        "equal to the optimum",
        "count vs optimum",
        "top priority",
        "unnecessary",
        "p99",
    ):
        assert figure in text
    assert "bar 0 unnecessary victims" in text
    assert "exact search" in text


@pytest.mark.django_db(transaction=True)
def test_bench_scheduler_prints_pass_figures_and_cleans_up():
    out = StringIO()
    call_command("bench_scheduler", "--sizes", "100", "--passes", "3", stdout=out)
    text = out.getvalue()
    assert "== 100 waiting" in text
    assert "planner fifo" in text and "planner pack" in text
    assert "steady" in text and "churn" in text and "decisions/s" in text
    assert not Cluster.objects.exists() and not Deployment.objects.exists()


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
