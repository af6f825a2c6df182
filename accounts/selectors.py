"""Reads for accounts: the caller's API tokens, and the token a request presents."""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiToken


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_list(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The caller's tokens, expired ones included (until they revoke them), oldest first."""
    return ApiToken.objects.filter(user=user).order_by("id")


def token_get_active(*, secret: str) -> ApiToken | None:
    """The unexpired token with this secret, of an active user, or None."""
    return (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(secret), expires_at__gt=timezone.now(), user__is_active=True)
        .first()
    )
