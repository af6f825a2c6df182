"""Root URLs: the API under /api/v1, its schema and docs, the admin and the web pages."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from hypervisor.middleware import REDOC_POLICY, with_policy
from web.docs import SwaggerView

# JSON under /api/ for what Django refuses before any view (an over-large body).
handler400 = "hypervisor.errors.bad_request"

# Site-styled error pages with a way home; under /api/ the 500 stays hypervisor.errors'
# JSON (503 with Retry-After while the database is unreachable), which web.errors calls.
handler403 = "web.errors.forbidden"
handler404 = "web.errors.not_found"
handler500 = "web.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("hypervisor.api_urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start-up script is served as a file (no inline script), and reads
    # the CSRF cookie on every request (web.docs).
    path("api/docs", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/redoc",
        with_policy(SpectacularRedocView.as_view(url_name="schema"), REDOC_POLICY),
        name="redoc",
    ),
    path("api-auth/", include("rest_framework.urls")),
    # /healthz, /readyz, /metrics
    path("", include("ops.urls")),
    # The RQ queues and workers, for staff (linked from the admin's index page).
    path("django-rq/", include("django_rq.urls")),
    # The pages for people: sign in, organizations, dashboards, deployments.
    path("", include("web.urls", namespace="web")),
]
