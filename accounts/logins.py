"""One set of login limits for every door that checks a password.

Every door (the API's login, the sign-in page, the admin's login, the browsable API's
login) checks a password through `django.contrib.auth.authenticate()`, so the limits
live in the authentication backend (`accounts.backends.RateLimitedModelBackend`):

- per IP, every attempt counts (`RATELIMIT_LOGIN_IP`);
- per username, failed attempts count (`RATELIMIT_LOGIN_USERNAME`), keyed on the
  username as Django's login form normalizes it (stripped, NFKC) and case-folded, so no
  spelling of a name gets its own guesses;
- once either count is reached, the attempt is refused with `LoginRefused` *before* the
  password is checked: the answer is the same whether it was right or not.

Doors turn `LoginRefused` into 429 with `Retry-After` (DRF does it for the API, as for
any `Throttled`; `hypervisor.ratelimits.RateLimitedMiddleware` for the pages).
"""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from hypervisor.exceptions import RateLimited
from hypervisor.ratelimits import retry_after_seconds

IP_GROUP = "login-ip"
FAILURES_GROUP = "login-failures"


class LoginRefused(RateLimited):
    """Too many sign-in attempts: refused without checking the password."""

    default_detail = "Too many sign-in attempts; try again later."


def normalize_username(raw: object) -> str:
    """The username as Django's login form gives it to `authenticate` (stripped, then
    NFKC, as `UsernameField` does), case-folded for counting."""
    return unicodedata.normalize("NFKC", str(raw).strip()).strip().casefold()[:150]


def _usage(request: HttpRequest, group: str, key: str, rate: str, *, increment: bool):
    return get_usage(request, group=group, key=lambda _g, _r: key, rate=rate, increment=increment)


def _used_up(usage) -> bool:
    # `count >= limit`: django-ratelimit's own test (count > limit) is one attempt late.
    return usage is not None and usage["count"] >= usage["limit"]


def check_login_allowed(request: HttpRequest, username: object) -> None:
    """Count this attempt against the IP; raise `LoginRefused` when the IP or the
    username has used up its attempts. Called before the password is checked."""
    ip_rate, failures_rate = settings.RATELIMIT_LOGIN_IP, settings.RATELIMIT_LOGIN_USERNAME
    # The IP's count includes this attempt: the (N+1)th is the first refused.
    ip_usage = get_usage(request, group=IP_GROUP, key="ip", rate=ip_rate, increment=True)
    if ip_usage is not None and ip_usage["count"] > ip_usage["limit"]:
        raise LoginRefused(wait=retry_after_seconds(ip_rate))
    key = normalize_username(username)
    if _used_up(_usage(request, FAILURES_GROUP, key, failures_rate, increment=False)):
        raise LoginRefused(wait=retry_after_seconds(failures_rate))


def count_failed_login(request: HttpRequest, username: object) -> None:
    key = normalize_username(username)
    _usage(request, FAILURES_GROUP, key, settings.RATELIMIT_LOGIN_USERNAME, increment=True)
