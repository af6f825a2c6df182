"""OpenAPI description of our session authentication (cookie + CSRF header)."""

from drf_spectacular.authentication import SessionScheme


class HypervisorSessionScheme(SessionScheme):
    target_class = "hypervisor.authentication.SessionAuthentication"
