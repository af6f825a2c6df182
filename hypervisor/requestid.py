"""The request id: one per HTTP request, carried into the jobs that request enqueues.

It lives in a context variable so that the log formatter can stamp every line with it,
whatever code logs. No HTTP here: the middleware sets it for requests, `job_meta` and
`restored_from_job` carry it through RQ.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-ID"
META_KEY = "request_id"

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What we accept from a client: short and printable, so it cannot forge log lines.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)


def current_request_id() -> str | None:
    return _request_id.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def sanitized(candidate: str | None) -> str:
    """The client's id when acceptable, else a fresh one."""
    if candidate and _ACCEPTABLE.fullmatch(candidate):
        return candidate
    return new_request_id()


@contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    """Make `request_id` current for the duration of the block."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def job_meta() -> dict[str, str]:
    """RQ job meta that carries the current request id (empty outside a request)."""
    request_id = current_request_id()
    return {META_KEY: request_id} if request_id else {}


@contextmanager
def restored_from_job() -> Iterator[None]:
    """Inside an RQ job: make the enqueuing request's id current again."""
    from rq import get_current_job

    job = get_current_job()
    with bound_request_id(job.meta.get(META_KEY) if job is not None else None):
        yield
