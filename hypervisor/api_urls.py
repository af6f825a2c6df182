"""The /api/v1 routes. Every path answers with and without a trailing slash."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from hypervisor.api_root import ApiRootView
from orgs.api.me import MeView


@csrf_exempt  # it changes nothing, whatever the method
def not_found(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    """Any other path under /api/v1 (an unknown route, an id too long to be one): the
    JSON 404 that DRF gives for a missing object, not Django's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)


urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("auth/", include("accounts.api.urls")),
    re_path(r"^auth/me/?$", MeView.as_view(), name="auth-me"),
    path("", include("orgs.api.urls")),
    path("", include("clusters.api.urls")),
    path("", include("scheduler.api.urls")),
    path("", include("deployments.api.urls")),
    # Keep last: it answers whatever the routes above do not match.
    re_path(r"^(?P<unmatched>.*)$", not_found),
]
