"""Domain errors and the API's exception handler.

Services raise Django's `ValidationError` (bad input, 400) or a `Conflict` subclass
(the object's current state forbids the action, 409); never HTTP errors.
"""

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(Exception):
    """The action is well-formed but the current state forbids it (HTTP 409).

    `code` goes into the answer beside `detail`, so that a client (and a test) can tell
    which rule refused: each subclass names its own, and a refusal by the database's
    constraints is `constraint_violation`, never one of these.
    """

    code = "conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


CONSTRAINT_VIOLATION = "constraint_violation"


class RateLimited(exceptions.Throttled):
    """Too many requests; DRF renders it as 429 with `Retry-After`."""

    default_detail = "Too many requests; try again later."


def _validation_detail(error: DjangoValidationError) -> Any:
    if hasattr(error, "error_dict"):
        return {field: [str(m) for m in msgs] for field, msgs in error.message_dict.items()}
    return {"detail": " ".join(str(m) for m in error.messages)}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain errors to HTTP answers; everything else goes to DRF's handler."""
    if isinstance(exc, DjangoValidationError):
        return Response(_validation_detail(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Conflict):
        return Response({"detail": exc.message, "code": exc.code}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, IntegrityError):
        # A service let through what the database refused: a bug or a race the
        # service's own check missed. Its own code, distinct from every service refusal.
        return Response(
            {
                "detail": "The request conflicts with the current state of the data.",
                "code": CONSTRAINT_VIOLATION,
            },
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, ObjectDoesNotExist):
        exc = exceptions.NotFound()
    if isinstance(exc, Ratelimited):
        exc = RateLimited(wait=60)
    return drf_exception_handler(exc, context)
