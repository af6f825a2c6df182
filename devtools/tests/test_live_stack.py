"""Short versions of the load run and the fuzzing, inside `make test`.

Each starts the real stack on loopback (gunicorn with 2 workers, 2 RQ workers, rqcron)
against its own PostgreSQL database (dropped when it stops) and its own redis-server:
real processes, nothing mocked, nothing shared with the suite's database or Redis. The
long runs are scripts (docs/benchmarks.md).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from devtools.bench.fuzz import run_hardening_probes, run_schemathesis
from devtools.bench.runs import LoadShape, load_run
from devtools.bench.stack import Stack, StackConfig

# Each starts a whole stack (migrations, gunicorn, workers) and runs hundreds of requests.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def stack_config(suffix: str, **overrides) -> StackConfig:
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"))
    base = os.environ.get("TEST_DATABASE_NAME") or "test_hypervisor"
    return StackConfig(
        database=f"{base}_{suffix}",
        pg_url=f"{url.scheme}://{url.netloc}",
        drop_database_after=True,
        **overrides,
    )


@pytest.fixture
def stack():
    with Stack(stack_config("load", safety_net_seconds=2)) as running:
        yield running


def test_a_short_load_run_has_no_5xx_and_a_clean_audit(stack):
    shape = LoadShape(
        clients=8,
        clusters=4,
        get_ops=10,
        create_ops=6,
        lifecycle_ops=12,
        rounds=2,
        latency_samples=2,
    )
    result = load_run(stack, shape, say=lambda line: None)
    report = result.text()
    assert result.server_errors == 0, report
    assert result.connection_errors == 0, report
    assert result.audit_clean, report
    assert result.answered_201 > 0 and result.lost == [], report
    # The passes ran in the RQ workers; the web's /metrics adds their samples up.
    metrics = dict(
        line.split(" ", 1) for line in stack.metrics().splitlines() if line.startswith("hyperv")
    )
    assert float(metrics["hypervisor_scheduling_pass_seconds_count"]) > 0
    assert float(metrics["hypervisor_deployment_starts_total"]) > 0
    # The container health checks of worker and cron (docker-compose.yml).
    assert "2 live RQ worker(s)" in stack.manage("probe", "--worker").stdout
    assert "1 live RQ cron scheduler(s)" in stack.manage("probe", "--cron").stdout


def test_a_bounded_fuzz_run_finds_no_server_error_and_no_schema_violation(stack):
    result = run_schemathesis(stack.url, max_examples=3, seed=7)
    assert result.passed, result.output[-6000:]
    assert result.cases >= 200, result.output[-2000:]


def test_the_hardening_probes_are_answered_right(stack):
    """Issue 16's hostile requests against the real stack (gunicorn, PostgreSQL)."""
    results = run_hardening_probes(stack.url)

    assert [r for r in results if not r.right] == [], results
    assert stack.count_5xx_in_logs() == 0
