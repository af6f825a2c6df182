"""Calls to a runtime, made safe: retries with backoff, a circuit breaker, `status`.

`gateway_for(runtime)` answers an object with the backend protocol's methods. Each call
- retries `RuntimeUnavailable` with exponential backoff and jitter (tenacity), at most
  `RUNTIME_RETRY_ATTEMPTS` tries;
- goes through the runtime's circuit breaker (pybreaker): after
  `RUNTIME_BREAKER_FAIL_MAX` failed calls in a row it opens, and for
  `RUNTIME_BREAKER_RESET_SECONDS` every call fails at once with `RuntimeUnavailable`
  without touching the engine; then one trial call closes it again or reopens it. With
  Redis the breaker's state lives there (`CircuitRedisStorage`), so every worker and web
  process shares one breaker per runtime; the embedded default keeps it in memory.
- records the outcome on the runtime row: `unreachable` (with since when and why) after
  a call that could not reach it, `ok` after one that did. `WorkloadRejected` is the
  engine answering: it counts as reachable and never trips the breaker.

Never call a gateway while holding a database lock: a call may take seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pybreaker
import redis
from django.conf import settings
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from runtime import services
from runtime.backends import build_backend
from runtime.backends.base import (
    Backend,
    RuntimeUnavailable,
    Workload,
    WorkloadRejected,
    WorkloadSpec,
    WorkloadState,
)
from runtime.models import Health, Runtime

T = TypeVar("T")
_lock = threading.Lock()
_backends: dict[tuple, Backend] = {}
_breakers: dict[str, pybreaker.CircuitBreaker] = {}


def _breaker_for(name: str) -> pybreaker.CircuitBreaker:
    with _lock:
        breaker = _breakers.get(name)
        if breaker is None:
            storage = None
            if settings.REDIS_URL:
                prefix = settings.CACHES["default"].get("KEY_PREFIX", "hv")
                storage = pybreaker.CircuitRedisStorage(
                    pybreaker.STATE_CLOSED,
                    redis.Redis.from_url(settings.REDIS_URL),
                    namespace=f"{prefix}:runtime-breaker:{name}",
                )
            breaker = pybreaker.CircuitBreaker(
                fail_max=settings.RUNTIME_BREAKER_FAIL_MAX,
                reset_timeout=settings.RUNTIME_BREAKER_RESET_SECONDS,
                exclude=[WorkloadRejected],
                state_storage=storage,
                name=name,
            )
            _breakers[name] = breaker
        return breaker


def _backend_for(runtime: Runtime) -> Backend:
    # One backend per endpoint and settings, kept: it holds the engine connection.
    key = (
        runtime.name,
        runtime.kind,
        runtime.endpoint,
        repr(sorted(runtime.options.items())),
        repr(sorted(runtime.credentials.items())),
    )
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            backend = build_backend(
                kind=runtime.kind,
                endpoint=runtime.endpoint,
                options=runtime.options,
                credentials=runtime.credentials,
            )
            _backends[key] = backend
        return backend


def forget_breakers() -> None:
    """Drop this process's breakers and connections (tests; after a settings change)."""
    with _lock:
        _breakers.clear()
        _backends.clear()


def breaker_state(runtime: Runtime) -> str:
    """`closed`, `open` or `half-open`, as every process sees it."""
    return _breaker_for(runtime.name).current_state


class RuntimeGateway:
    """The backend protocol of one runtime, with retries, breaker and status."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.backend = _backend_for(runtime)
        self.breaker = _breaker_for(runtime.name)

    def _call(self, operation: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception_type(RuntimeUnavailable),
            stop=stop_after_attempt(settings.RUNTIME_RETRY_ATTEMPTS),
            wait=wait_exponential_jitter(
                multiplier=settings.RUNTIME_RETRY_WAIT_SECONDS,
                jitter=settings.RUNTIME_RETRY_WAIT_SECONDS,
                max=settings.RUNTIME_RETRY_WAIT_SECONDS * 8,
            ),
            reraise=True,
        )
        try:
            result = self.breaker.call(retrying, operation)
        except pybreaker.CircuitBreakerError as error:
            detail = f"Circuit open after repeated failures ({error})."
            self._record(Health.UNREACHABLE, detail)
            raise RuntimeUnavailable(
                f"Runtime '{self.runtime.name}' is unreachable; calls are paused."
            ) from error
        except RuntimeUnavailable as error:
            self._record(Health.UNREACHABLE, str(error))
            raise
        except WorkloadRejected:
            self._record(Health.OK, "")
            raise
        self._record(Health.OK, "")
        return result

    def _record(self, status: Health, detail: str) -> None:
        services.runtime_record_status(runtime_id=self.runtime.pk, status=status, detail=detail)

    @property
    def queues(self) -> bool:
        return self.backend.queues

    def ping(self) -> None:
        self._call(self.backend.ping)

    def start(self, spec: WorkloadSpec) -> WorkloadState:
        return self._call(lambda: self.backend.start(spec))

    def stop(self, name: str, *, grace_seconds: float) -> WorkloadState:
        return self._call(lambda: self.backend.stop(name, grace_seconds=grace_seconds))

    def state(self, name: str) -> WorkloadState:
        return self._call(lambda: self.backend.state(name))

    def logs(self, name: str, *, tail: int) -> list[str]:
        return self._call(lambda: self.backend.logs(name, tail=tail))

    def remove(self, name: str) -> None:
        self._call(lambda: self.backend.remove(name))

    def list_workloads(self, *, labels: dict[str, Any]) -> list[Workload]:
        return self._call(lambda: self.backend.list_workloads(labels=labels))


def gateway_for(runtime: Runtime) -> RuntimeGateway:
    return RuntimeGateway(runtime)
