"""Writes for accounts."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction


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
