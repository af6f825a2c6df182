"""The authentication backend: Django's, behind the login limits of `accounts.logins`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts.logins import check_login_allowed, count_failed_login

UserModel = get_user_model()


class RateLimitedModelBackend(ModelBackend):
    """`ModelBackend` for every password check made with a request (every door).

    Without a request (a management command, a test's `authenticate()`), there is
    nobody to limit and it is plain `ModelBackend`.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return super().authenticate(request, username, password, **kwargs)
        if username is None:
            username = kwargs.get(UserModel.USERNAME_FIELD)
        check_login_allowed(request, username or "")
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            count_failed_login(request, username or "")
        return user
