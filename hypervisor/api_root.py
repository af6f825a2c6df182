"""`GET /api/v1/`: the browsable API's front door, a link to each collection."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

ROUTES = {
    "register": "auth-register",
    "login": "auth-login",
    "logout": "auth-logout",
    "me": "auth-me",
    "csrf": "auth-csrf",
    "organizations": "organization-list",
    "join": "organization-join",
    "clusters": "cluster-list",
    "deployments": "deployment-list",
}


class ApiRootView(APIView):
    """The API's collections. Documented in full at /api/docs (Swagger UI) and
    /api/redoc; sign in with `login`, or with the browsable API's "Log in" link."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response({key: reverse(name, request=request) for key, name in ROUTES.items()})
