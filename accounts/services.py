"""Writes for accounts: users and their API tokens."""

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiToken
from accounts.selectors import token_digest


def user_register(*, username: str, password: str, email: str = "") -> AbstractBaseUser:
    """Create a user after Django's password validators (which `create_user` skips)."""
    User = get_user_model()
    candidate = User(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from error
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": ["A user with that username already exists."]})
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password, email=email)
    except IntegrityError as error:  # a concurrent registration of the same name
        raise ValidationError(
            {"username": ["A user with that username already exists."]}
        ) from error


# --- API tokens -------------------------------------------------------------------------------

TOKEN_PREFIX = "hv_"
TOKEN_DEFAULT_DAYS = 90
TOKEN_MAX_DAYS = 365
TOKENS_PER_USER = 50
# last_used_at is written at most this often per token: a busy script costs one UPDATE
# a minute, not one per request.
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def token_create(
    *, user: AbstractBaseUser, name: str, expires_in_days: int = TOKEN_DEFAULT_DAYS
) -> tuple[ApiToken, str]:
    """A new token for `user` and its secret, which is returned here and never stored.

    At most `TOKENS_PER_USER` unexpired tokens per user; the user's row is locked so that
    concurrent creations cannot pass the limit together.
    """
    if not 1 <= expires_in_days <= TOKEN_MAX_DAYS:
        raise ValidationError(
            {"expires_in_days": [f"Must be between 1 and {TOKEN_MAX_DAYS} days."]}
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic(durable=True):
        # The user's row serializes this user's creations (and nobody else's): the count
        # below cannot be read by two of them at once.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        now = timezone.now()
        if ApiToken.objects.filter(user=user, expires_at__gt=now).count() >= TOKENS_PER_USER:
            raise ValidationError(
                {
                    "detail": [
                        f"You have {TOKENS_PER_USER} tokens, the most allowed; "
                        "revoke one you no longer use first."
                    ]
                }
            )
        token = ApiToken.objects.create(
            user=user,
            name=name,
            digest=token_digest(secret),
            expires_at=now + timedelta(days=expires_in_days),
        )
    return token, secret


def token_revoke(*, user: AbstractBaseUser, token_id: int) -> None:
    """Delete one of the caller's tokens; another user's is `ApiToken.DoesNotExist`."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise ApiToken.DoesNotExist


def token_mark_used(*, token: ApiToken) -> None:
    """Record that `token` was just used, at most once per `TOKEN_USE_RESOLUTION`."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < TOKEN_USE_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
