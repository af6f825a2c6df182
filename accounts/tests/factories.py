import functools

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

PASSWORD = "correct-horse-battery-staple"


def _hashed(raw_password: str) -> str:
    """A real hash of `raw_password` with the configured hashers, computed once per run.

    The production hasher is slow on purpose (~0.3 s); test users share the hash of the
    same password, so logging in still runs the real check.
    """
    return _hash_once(raw_password, tuple(settings.PASSWORD_HASHERS))


@functools.cache
def _hash_once(raw_password: str, hashers: tuple[str, ...]) -> str:
    return make_password(raw_password)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD, transform=_hashed)
