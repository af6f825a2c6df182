"""Rate limits on top of django-ratelimit, answered with 429 and `Retry-After`.

Counters live in the default cache (Redis when configured). django-ratelimit uses
fixed windows, so a client may burst up to twice a rate across a window boundary;
`Retry-After` is the full window, an upper bound on the wait.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit.core import _split_rate, is_ratelimited

from hypervisor.exceptions import RateLimited
from hypervisor.ratelimit_rules import EXPENSIVE_READS, UNSAFE_METHODS


def client_ip_behind_proxy(request: HttpRequest) -> str:
    """The client's address as the proxy in front saw it: the last entry of
    `X-Forwarded-For`, the one the proxy itself appended (entries before it are whatever
    the client sent, and prove nothing). Without the header, the peer's address.

    For `RATELIMIT_IP_META_KEY=hypervisor.ratelimits.client_ip_behind_proxy` (what
    docker-compose.yml sets): without it, every client shares the proxy's address, and
    so one bucket per limit.
    """
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    return last or request.META["REMOTE_ADDR"]


def retry_after_seconds(rate: str) -> int:
    """The window length of a rate such as `10/m`: how long a limited client waits at most."""
    _count, period = _split_rate(rate)
    return period


def check_rate(
    request: HttpRequest,
    *,
    group: str,
    key: str | Callable[[str, HttpRequest], str],
    rate: str,
    increment: bool = True,
) -> None:
    """Count this request against `group` and raise `RateLimited` when over `rate`."""
    if is_ratelimited(
        request, group=group, key=key, rate=rate, method=is_ratelimited.ALL, increment=increment
    ):
        raise RateLimited(wait=retry_after_seconds(rate))


def rate_limited_response(rate: str) -> HttpResponse:
    wait = retry_after_seconds(rate)
    response = JsonResponse({"detail": f"Too many requests; retry in {wait} s."}, status=429)
    response["Retry-After"] = str(wait)
    return response


class UnsafeRequestRateLimitMiddleware:
    """Limit every unsafe request of a logged-in user (`RATELIMIT_UNSAFE_USER`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        if request.method in UNSAFE_METHODS and user is not None and user.is_authenticated:
            rate = settings.RATELIMIT_UNSAFE_USER
            if is_ratelimited(
                request,
                group="unsafe",
                key="user",
                rate=rate,
                method=is_ratelimited.ALL,
                increment=True,
            ):
                return rate_limited_response(rate)
        return self.get_response(request)


class ExpensiveReadRateLimitMiddleware:
    """Limit the expensive reads of a logged-in user (`RATELIMIT_READ_USER`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        if request.method == "GET" and EXPENSIVE_READS.match(request.path_info):
            user = getattr(request, "user", None)
            rate = settings.RATELIMIT_READ_USER
            if (
                user is not None
                and user.is_authenticated
                and is_ratelimited(
                    request,
                    group="expensive-read",
                    key="user",
                    rate=rate,
                    method=is_ratelimited.ALL,
                    increment=True,
                )
            ):
                return rate_limited_response(rate)
        return self.get_response(request)


class RateLimitedMiddleware:
    """A `RateLimited` raised by a page (a refused sign-in at the admin's or the browsable
    API's door) is 429 with `Retry-After`, as DRF answers it in the API."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, RateLimited):
            return None
        wait = int(exception.wait or 60)
        response = HttpResponse(
            f"Too many attempts. Try again in {wait} seconds.\n",
            status=429,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(wait)
        return response
