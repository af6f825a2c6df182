"""OpenAPI descriptions of our authentication schemes: the session (cookie + CSRF
header) and API tokens (`Authorization: Bearer <token>`)."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class HypervisorSessionScheme(SessionScheme):
    target_class = "hypervisor.authentication.SessionAuthentication"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from `POST /api/v1/auth/tokens`; no CSRF header.",
        }
