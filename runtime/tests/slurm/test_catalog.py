"""A slurm runtime in the catalog and behind the gateway (retries, breaker, status),
against the real Slurm of conftest.py."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import call_command

from runtime.backends.base import RuntimeUnavailable
from runtime.gateway import breaker_state, gateway_for
from runtime.models import Health, Runtime

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("runtime", *args, stdout=out)
    return out.getvalue()


def test_runtime_add_slurm_exactly_as_api_md_writes_it_then_check(slurm, tmp_path):
    out = run(
        "add", "hpc", "--kind", "slurm", "--endpoint", str(slurm.conf),
        "--option", f"partition={slurm.partition}", "--option", "container=none",
        "--option", f"output_dir={tmp_path}",
    )  # fmt: skip

    assert f"Added runtime hpc (slurm, {slurm.conf})" in out
    runtime = Runtime.objects.get(name="hpc")
    assert runtime.options["partition"] == slurm.partition
    run("check", "hpc")
    runtime.refresh_from_db()
    assert runtime.status == Health.OK


def test_slurmctld_down_opens_the_breaker_then_it_closes(slurm, tmp_path, settings):
    settings.RUNTIME_RETRY_ATTEMPTS = 1
    settings.RUNTIME_BREAKER_FAIL_MAX = 2
    settings.RUNTIME_BREAKER_RESET_SECONDS = 1
    run(
        "add", "hpc", "--kind", "slurm", "--endpoint", str(slurm.conf),
        "--option", f"output_dir={tmp_path}", "--option", "timeout=2",
    )  # fmt: skip
    runtime = Runtime.objects.get(name="hpc")
    gateway = gateway_for(runtime)

    slurm.stop_controller()
    with pytest.raises(RuntimeUnavailable):
        gateway.list_workloads(labels={"io.hypervisor.installation": "x"})
    with pytest.raises(RuntimeUnavailable, match="calls are paused"):
        gateway.ping()
    assert breaker_state(runtime) == "open"
    runtime.refresh_from_db()
    assert runtime.status == Health.UNREACHABLE

    slurm.start_controller()
    # Closed again by the first trial call after the reset time.
    time.sleep(settings.RUNTIME_BREAKER_RESET_SECONDS)
    gateway.ping()
    assert breaker_state(runtime) == "closed"
    runtime.refresh_from_db()
    assert runtime.status == Health.OK
