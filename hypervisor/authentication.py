"""Session authentication that answers 401 (not 403) to anonymous callers."""

from rest_framework import authentication
from rest_framework.request import Request


class SessionAuthentication(authentication.SessionAuthentication):
    """Django sessions with CSRF enforced on unsafe methods for logged-in users.

    DRF answers 403 to unauthenticated requests unless the scheme names a
    `WWW-Authenticate` challenge; naming one makes them 401, as API.md asks.
    """

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="api"'


def enforce_csrf(request: Request) -> None:
    """Apply Django's CSRF check to a request that has no session yet (login, register)."""
    SessionAuthentication().enforce_csrf(request)
