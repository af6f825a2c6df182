"""Retries, the shared circuit breaker and `status`, against a real dockerd."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from runtime.backends.base import RuntimeUnavailable, WorkloadRejected, WorkloadSpec
from runtime.gateway import breaker_state, forget_breakers, gateway_for
from runtime.labels import INSTALLATION_LABEL
from runtime.models import Health, Runtime
from runtime.services import RuntimeSpec, runtime_add

pytestmark = [pytest.mark.engine, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _fast_breaker(settings):
    settings.RUNTIME_RETRY_ATTEMPTS = 2
    settings.RUNTIME_RETRY_WAIT_SECONDS = 0.01
    settings.RUNTIME_BREAKER_FAIL_MAX = 3
    settings.RUNTIME_BREAKER_RESET_SECONDS = 1


def add_docker_runtime(endpoint: str) -> Runtime:
    spec = RuntimeSpec(
        name=f"dk-{uuid.uuid4().hex[:6]}",
        kind="docker",
        endpoint=endpoint,
        options={"network": "none"},
        credentials={},
    )
    return runtime_add(spec=spec)


def test_a_down_engine_opens_the_breaker_for_every_process_then_it_closes(docker_engine, tmp_path):
    # The endpoint is a socket path where no engine listens yet.
    socket = tmp_path / "engine.sock"
    runtime = add_docker_runtime(f"unix://{socket}")
    gateway = gateway_for(runtime)
    for _ in range(2):
        with pytest.raises(RuntimeUnavailable):
            gateway.ping()
    runtime.refresh_from_db()
    assert runtime.status == Health.UNREACHABLE
    assert "unreachable" in runtime.status_detail
    went_down = runtime.status_since
    with pytest.raises(RuntimeUnavailable, match="calls are paused"):
        gateway.ping()  # the third failure in a row opens it
    assert breaker_state(runtime) == "open"
    # Another process (here: this one with its breakers forgotten) sees it open in Redis.
    forget_breakers()
    assert breaker_state(runtime) == "open"
    # The engine comes back; while the breaker is open nobody asks it.
    socket.symlink_to(docker_engine.socket)
    with pytest.raises(RuntimeUnavailable, match="calls are paused"):
        gateway_for(runtime).ping()
    time.sleep(1.1)
    gateway_for(runtime).ping()  # the trial call succeeds: closed again
    assert breaker_state(runtime) == "closed"
    runtime.refresh_from_db()
    assert runtime.status == Health.OK
    assert runtime.status_since > went_down


def test_refusals_do_not_trip_the_breaker(docker_engine):
    runtime = add_docker_runtime(docker_engine.endpoint)
    gateway = gateway_for(runtime)
    spec = WorkloadSpec(
        name=f"hv-refused-{uuid.uuid4().hex[:6]}",
        image="registry.invalid/nothing:1",
        labels={INSTALLATION_LABEL: "gateway-test"},
    )
    began = time.monotonic()
    for _ in range(5):
        with pytest.raises(WorkloadRejected):
            gateway.start(spec)
    assert time.monotonic() - began < 5  # a refusal is not retried
    assert breaker_state(runtime) == "closed"
    runtime.refresh_from_db()
    assert runtime.status == Health.OK


def test_a_transient_failure_is_retried(docker_engine, tmp_path, settings):
    settings.RUNTIME_RETRY_ATTEMPTS = 30
    settings.RUNTIME_RETRY_WAIT_SECONDS = 0.05
    socket = tmp_path / "late.sock"
    runtime = add_docker_runtime(f"unix://{socket}")
    gateway = gateway_for(runtime)
    # The engine appears while the gateway retries: the call succeeds, no error escapes.
    timer = _later(0.3, lambda: socket.symlink_to(docker_engine.socket))
    gateway.ping()
    timer.join()
    assert breaker_state(runtime) == "closed"


def _later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer
