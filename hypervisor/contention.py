"""Retrying a transaction that another transaction was in the way of."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError

T = TypeVar("T")
logger = logging.getLogger(__name__)

# PostgreSQL error codes that mean "another transaction was in the way; try again".
RETRYABLE_PGCODES = frozenset({"40P01", "40001", "55P03"})  # deadlock, serialization, lock timeout


def _pgcode(error: OperationalError) -> str | None:
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def retry_on_contention(fn: Callable[[], T], *, attempts: int = 5) -> T:
    """Run `fn` (which owns its transaction) again after a deadlock or lock timeout.

    With the single lock order (clusters.locking) a deadlock should not happen; lock
    timeouts can, under heavy load, and the action is safe to retry because its
    transaction rolled back.
    """
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as error:
            code = _pgcode(error)
            if code not in RETRYABLE_PGCODES or attempt == attempts - 1:
                raise
            logger.warning("retrying after contention", extra={"pgcode": code, "attempt": attempt})
            time.sleep(0.05 * (2**attempt))
    raise AssertionError("unreachable")
