"""The /api/v1 routes. Every path answers with and without a trailing slash."""

from django.urls import include, path

urlpatterns = [
    path("auth/", include("accounts.api.urls")),
    path("", include("orgs.api.urls")),
    path("", include("clusters.api.urls")),
    path("", include("deployments.api.urls")),
]
