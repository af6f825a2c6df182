"""What `scheduler.triggers` (which enqueues a pass) and `scheduler.jobs` (which runs
it) share: the Redis connection and the key that merges requests for a cluster. Here, so
that neither imports the other."""

from __future__ import annotations

import functools

import django_rq

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
