"""What `scheduler.triggers` (which enqueues a pass) and `scheduler.jobs` (which runs
it) share: the Redis connection and the key that merges requests for a cluster. Here, so
that neither imports the other. And `defer_once`, the one way both the reasons refresh
and the runtime watcher put work a few seconds ahead."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import django_rq
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Set while a pass for the cluster is enqueued and not yet started.
PENDING_KEY = "hv:schedule-pending:{cluster_id}"
PENDING_TTL_SECONDS = 30  # a job lost before clearing it holds merges this long at most


@functools.cache
def redis_connection():
    """One client (and connection pool) per process: django_rq's `get_connection` builds a
    new pool, hence a new TCP connection, on every call. redis-py's pool is fork-safe."""
    return django_rq.get_connection("default")


# Set while a refresh of the cluster's queue reasons is due (scheduler.triggers).
REASONS_KEY = "hv:reasons-due:{cluster_id}"


# Keys with an in-process timer pending (embedded mode, or Redis down).
_deferred: set[str] = set()
_deferred_lock = threading.Lock()


def defer_once(
    *,
    key: str,
    seconds: float,
    ttl_seconds: int,
    job: Callable | str,
    args: tuple,
    in_process: Callable[[], None],
    meta: dict | None = None,
) -> None:
    """Run work `seconds` from now, once per `key` while it is due: further requests join
    it. With Redis, an rq scheduled job (`job(*args)`), the key set with NX for
    `ttl_seconds` (the job deletes it when it runs; a job lost on the way blocks the key
    that long); without Redis, or while it is down, a daemon timer in this process that
    calls `in_process` (the key released just before, so a request during the work asks
    again). Never a sleep in a worker."""
    if settings.USE_RQ:
        try:
            connection = redis_connection()
            if connection.set(key, "1", nx=True, ex=ttl_seconds):
                django_rq.get_queue("default", connection=connection).enqueue_in(
                    timedelta(seconds=seconds), job, *args, meta=meta or {}
                )
            return
        except RedisError:
            logger.warning("redis unavailable; deferring in-process", extra={"key": key})
    with _deferred_lock:
        if key in _deferred:
            return
        _deferred.add(key)

    def run() -> None:
        with _deferred_lock:
            _deferred.discard(key)
        in_process()

    timer = threading.Timer(seconds, run)
    timer.daemon = True
    timer.start()
