"""Request ids on every request and response, and one structured log line per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from hypervisor.requestid import HEADER, bound_request_id, sanitized

logger = logging.getLogger("hypervisor.request")

# Probes and scrapes run every few seconds: logging each would drown the real traffic.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestIdMiddleware:
    """Accept the client's `X-Request-ID` (if sane) or make one; echo it in the response.

    Everything logged while the request is handled (and every job it enqueues) carries
    the id. Place it first in MIDDLEWARE so that it spans the whole request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sanitized(request.headers.get(HEADER))
        request.request_id = request_id
        began = time.monotonic()
        with bound_request_id(request_id):
            response = self.get_response(request)
            response[HEADER] = request_id
            if request.path.rstrip("/") not in QUIET_PATHS:
                logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.monotonic() - began) * 1000, 1),
                    },
                )
        return response
