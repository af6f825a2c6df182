"""A Content-Security-Policy on every page (`CONTENT_SECURITY_POLICY`).

Django 5.2 has none of its own. The pages load scripts and styles from this site only
(`web/live.js`, the admin's, the sidecar's Swagger UI), so an injected `<script>` or a
script from elsewhere does not run. A view may set its own header (the ReDoc page, whose
bundle needs inline script and a worker); this one is the default for the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and HEADER not in response:
            response[HEADER] = policy
        return response


# ReDoc's bundle starts itself with an inline script and renders in a blob: worker.
REDOC_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'none'"
)


def with_policy(view: Callable[..., HttpResponse], policy: str) -> Callable[..., HttpResponse]:
    """`view` with its own Content-Security-Policy instead of the default."""

    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response[HEADER] = policy
        return response

    return wrapped
