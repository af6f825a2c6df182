"""Django's error answers, JSON under /api/ (plain text elsewhere).

`server_error`: to an uncaught exception, 503 with `Retry-After` when the database is
unreachable, else 500. `bad_request`: a request Django refuses before any view (a body
over `DATA_UPLOAD_MAX_MEMORY_SIZE`, a bad host), 400 with a reason, where Django answered
an HTML page even to the API.

Django calls `server_error` (the `handler500` of `hypervisor.urls`) from inside the
`except` block that caught the exception, wherever it was raised (a view, or a
middleware reading the session or the user), so `sys.exc_info()` names it. While
PostgreSQL restarts or a connection breaks, every request used to answer 500.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

# Seconds a client should wait before trying again while the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable(error: BaseException | None) -> bool:
    """The database could not be reached, the connection broke, or it could not serve
    the request in time (a restart, a terminated backend, a lock wait past
    `DB_LOCK_TIMEOUT_MS`, SQLite's "database is locked"): `OperationalError` and
    `InterfaceError`. Errors of ours (constraints, SQL, data) are other classes."""
    return isinstance(error, (OperationalError, InterfaceError))


def _answer(request: HttpRequest, message: str, status: int) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _answer(request, f"The request body is too large: at most {limit} bytes.", 400)
    return _answer(request, "Bad request.", 400)


def server_error(request: HttpRequest) -> HttpResponse:
    unreachable = database_unavailable(sys.exc_info()[1])
    status = 503 if unreachable else 500
    message = "The database is unreachable; try again shortly." if unreachable else "Server error."
    response = _answer(request, message, status)
    if unreachable:
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response
