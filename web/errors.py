"""The site-styled error pages: 403 (with the view's reason), 404, 500 and CSRF failure.

Each keeps the site's header and offers a way home. Wired in `hypervisor.urls`
(`handler403`, `handler404`, `handler500`) and by `CSRF_FAILURE_VIEW`. The API under
/api/v1 keeps answering JSON: its own views and exception handler answer first.
"""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.csrf import requires_csrf_token

from hypervisor import errors as api_errors


def _page(request: HttpRequest | None, template: str, status: int, context: dict) -> HttpResponse:
    html = render_to_string(template, {"error_code": status, **context}, request=request)
    return HttpResponse(html, status=status)


@requires_csrf_token
def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = str(exception) if exception is not None and str(exception) else ""
    context = {"error_title": "Not allowed", "exception": reason}
    return _page(request, "403.html", 403, context)


@requires_csrf_token
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    context = {"error_title": "Page not found", "request_path": request.path}
    return _page(request, "404.html", 404, context)


def server_error(request: HttpRequest) -> HttpResponse:
    """Under /api/, hypervisor.errors' JSON; elsewhere the site's page, with the same
    status: 503 and `Retry-After` while the database is unreachable, else 500."""
    if request.path.startswith("/api/"):
        return api_errors.server_error(request)
    unreachable = api_errors.database_unavailable(sys.exc_info()[1])
    title = "The database is unreachable" if unreachable else "Something went wrong"
    # No request context: whatever broke (the database, a context processor) must not
    # break the error page too. Shown as signed out, with links home and to sign in.
    response = _page(None, "500.html", 503 if unreachable else 500, {"error_title": title})
    if unreachable:
        response["Retry-After"] = str(api_errors.DATABASE_RETRY_AFTER_SECONDS)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    context = {"error_title": "This form has expired", "reason": reason}
    return _page(request, "403_csrf.html", 403, context)
