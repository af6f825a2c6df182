"""The API's documentation pages, served entirely from this site (no internet needed)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI whose requests carry the current CSRF cookie (`web/swagger_ui.js`), its
    start-up script served as a file (`?script`), as the Content-Security-Policy wants."""

    template_name_js = "web/swagger_ui.js"

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response.data["csrf_cookie_name"] = settings.CSRF_COOKIE_NAME
        return response
