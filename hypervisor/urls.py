"""Root URLs: the API under /api/v1, its schema and docs, the admin and the web pages."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("hypervisor.api_urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api-auth/", include("rest_framework.urls")),
    # /healthz, /readyz, /metrics
    path("", include("ops.urls")),
    # The RQ queues and workers, for staff (linked from the admin's index page).
    path("django-rq/", include("django_rq.urls")),
    # The pages for people: sign in, organizations, dashboards, deployments.
    path("", include("web.urls", namespace="web")),
]
