"""Tiny real runs of the churn, latency and memory benchmarks (devtools/bench/churn.py,
memory.py): each on the real stack (gunicorn, RQ workers, rqcron, its own Redis and
PostgreSQL database), checking that the figures they print agree with what happened.
The measured runs are the scripts (docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from devtools.bench.churn import ChurnShape, LatencyShape, churn_run, latency_run
from devtools.bench.memory import MemoryShape, memory_run
from devtools.bench.stack import Stack, waiting_limits
from devtools.tests.test_live_stack import stack_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _quiet(line: str) -> None:
    pass


@pytest.fixture
def stack():
    config = stack_config("bench", safety_net_seconds=30, extra_env=waiting_limits(400))
    with Stack(config) as running:
        yield running


def test_a_tiny_churn_run_counts_every_change_and_get(stack):
    shape = ChurnShape(clients=3, changes=6, gets=5, rounds=2)
    result = churn_run(stack, shape, say=_quiet)
    assert result.refused == [] and result.server_errors == 0 and result.logged_5xx == 0
    for churn in result.rounds:
        assert churn.changes == 3 * 6 and churn.gets == 3 * 5
        assert churn.ratio == pytest.approx(
            (churn.changes / churn.change_seconds) / (churn.gets / churn.get_seconds)
        )
    assert (
        min(r.ratio for r in result.rounds) <= result.ratio <= max(r.ratio for r in result.rounds)
    )
    assert result.creates + result.completes == 2 * 3 * 6
    # What was created and not completed is running or waiting: at most 8 run (8 CPU).
    assert 0 <= result.creates - result.completes - result.waiting_at_end <= 8
    assert stack.audit().returncode == 0


def test_a_tiny_latency_run_samples_each_phase_at_the_rate_asked(stack):
    shape = LatencyShape(samples=4, pause=0.01, streamers=2, rate=4.0)
    result = latency_run(stack, shape, say=_quiet)
    assert len(result.idle_ms) == len(result.busy_ms) == 4
    assert all(ms > 0 for ms in result.idle_ms + result.busy_ms)
    # Paced: never more than the rate asked (plus one change per streamer in flight).
    assert 0 < result.busy_changes <= 4.0 * result.busy_seconds + 2
    assert result.server_errors == 0 and result.refused == []


def test_a_tiny_memory_run_reads_every_process_after_a_full_pass(stack):
    result = memory_run(stack, MemoryShape(waiting=300, requests=2), say=_quiet)
    assert result.waiting == 300
    roles = [p.role for p in result.processes]
    assert roles[:4] == ["gunicorn worker"] * 2 + ["rq worker"] * 2
    # rq's scheduler, forked by the worker that holds its lock, is in the table too.
    assert any(role.startswith("child of rq worker") for role in roles)
    for process in result.processes:
        assert 0 < process.rss_kb["after"] <= process.hwm_kb
    for process in result.processes[:4]:
        assert process.rss_kb["started"] > 0
    # Both web workers served reads; the capacity change ran at least one pass.
    assert all(seconds > 0 for seconds in result.web_cpu_seconds.values())
    assert len(result.web_cpu_seconds) == 2 and result.passes >= 1
    assert "| gunicorn worker |" in result.table()
