"""`Authorization: Bearer <token>`: API tokens for scripts, CI jobs and the `hv` client.

DRF's authentication hook over our hashed `ApiToken`: no session, so no CSRF check (a
browser never adds this header on its own, which is what CSRF protects against).
"""

from __future__ import annotations

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiToken
from accounts.selectors import token_get_active
from accounts.services import token_mark_used
from hypervisor.ratelimit_rules import EXPENSIVE_READS, UNSAFE_METHODS

# Imports stay clear of rest_framework.views (and so of hypervisor.exceptions): DRF imports
# this module while it builds its settings, which rest_framework.views needs.

BAD_TOKEN = "Invalid, expired or revoked token."


class TokenAuthentication(authentication.BaseAuthentication):
    """Authenticates `Authorization: Bearer <token>`; any other request is left to the
    next scheme (sessions). A Bearer header with a token that does not work is 401."""

    def authenticate(self, request: Request) -> tuple[object, ApiToken] | None:
        words = authentication.get_authorization_header(request).split()
        if not words or words[0].lower() != b"bearer":
            return None
        if len(words) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; expected 'Bearer <token>'."
            )
        try:
            secret = words[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(BAD_TOKEN) from None
        token = token_get_active(secret=secret)
        if token is None:
            raise exceptions.AuthenticationFailed(BAD_TOKEN)
        token_mark_used(token=token)
        _count_against_user_limits(request, token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def _count_against_user_limits(request: Request, token: ApiToken) -> None:
    """The per-user limits that `hypervisor.ratelimits`' middlewares keep for sessions
    (unsafe requests, expensive reads), on the same counters: those middlewares run
    before DRF and cannot see a token's user."""
    if request.method in UNSAFE_METHODS:
        group, rate = "unsafe", settings.RATELIMIT_UNSAFE_USER
    elif request.method == "GET" and EXPENSIVE_READS.match(request.path_info):
        group, rate = "expensive-read", settings.RATELIMIT_READ_USER
    else:
        return
    user_key = str(token.user_id)
    usage = get_usage(
        request, group=group, key=lambda group, request: user_key, rate=rate, increment=True
    )
    if usage is not None and usage["should_limit"]:  # None: RATELIMIT_ENABLE is off
        raise exceptions.Throttled(wait=usage["time_left"])
