"""The Accounts table of API.md: register, login, logout, me, csrf."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD, UserFactory
from orgs.models import Role
from orgs.tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
CSRF = "/api/v1/auth/csrf"
STRONG = "plum-tractor-velvet-91"


def _register(client: APIClient, **body):
    return client.post(REGISTER, body, format="json")


# --- register ---------------------------------------------------------------------------


def test_register_creates_the_user_and_answers_its_public_fields(anon):
    response = _register(anon, username="ada", password=STRONG, email="ada@example.com")

    assert response.status_code == 201, response.json()
    user = get_user_model().objects.get(username="ada")
    assert response.json() == {"id": user.pk, "username": "ada", "email": "ada@example.com"}
    assert user.check_password(STRONG)
    assert "password" not in response.json()


def test_register_without_email(anon):
    response = _register(anon, username="grace", password=STRONG)

    assert response.status_code == 201, response.json()
    assert response.json()["email"] == ""


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("83749201938475", "entirely numeric"),
        ("margaret-hamilton", "too similar"),
    ],
)
def test_register_applies_djangos_password_validators(anon, password, reason):
    response = _register(anon, username="margaret-hamilton", password=password)

    assert response.status_code == 400
    messages = response.json()["password"]
    assert any(reason in message for message in messages), messages
    assert not get_user_model().objects.filter(username="margaret-hamilton").exists()


def test_register_a_taken_username_is_400(anon):
    UserFactory(username="linus")

    response = _register(anon, username="linus", password=STRONG)

    assert response.status_code == 400
    assert "username" in response.json()


def test_register_a_username_taken_in_another_case_is_400(anon):
    UserFactory(username="Linus")

    response = _register(anon, username="linus", password=STRONG)

    assert response.status_code == 400
    assert "username" in response.json()


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com"])
def test_register_a_bad_email_is_400(anon, email):
    response = _register(anon, username="ken", password=STRONG, email=email)

    assert response.status_code == 400
    assert "email" in response.json()
    assert not get_user_model().objects.filter(username="ken").exists()


def test_register_missing_fields_are_named(anon):
    response = anon.post(REGISTER, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_register_does_not_log_in(anon):
    _register(anon, username="ada", password=STRONG)

    assert anon.get(ME).status_code == 401


# --- login ------------------------------------------------------------------------------


def test_login_answers_the_user_and_sets_session_and_csrf_cookies(anon, user):
    response = anon.post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json() == {"id": user.pk, "username": user.username, "email": user.email}
    assert response.cookies[settings.SESSION_COOKIE_NAME].value
    assert response.cookies[settings.CSRF_COOKIE_NAME].value
    assert anon.get(ME).json()["id"] == user.pk


def test_login_same_answer_for_unknown_user_and_wrong_password(anon, user):
    wrong_password = anon.post(
        LOGIN, {"username": user.username, "password": "not-the-password"}, format="json"
    )
    unknown_user = anon.post(LOGIN, {"username": "nobody", "password": PASSWORD}, format="json")

    assert wrong_password.status_code == unknown_user.status_code == 400
    assert wrong_password.json() == unknown_user.json()
    assert settings.SESSION_COOKIE_NAME not in wrong_password.cookies
    assert anon.get(ME).status_code == 401


def test_login_inactive_user_is_refused_like_bad_credentials(anon):
    inactive = UserFactory(is_active=False)

    response = anon.post(
        LOGIN, {"username": inactive.username, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 400
    assert (
        response.json()
        == anon.post(LOGIN, {"username": "nobody", "password": PASSWORD}, format="json").json()
    )


def test_login_rotates_the_session_key(anon, user):
    """A session id planted before login (session fixation) is worthless after it."""
    session = anon.session
    session["planted"] = True
    session.save()
    planted_key = session.session_key
    anon.cookies[settings.SESSION_COOKIE_NAME] = planted_key

    response = anon.post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")

    new_key = response.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key and new_key != planted_key
    assert not Session.objects.filter(session_key=planted_key).exists()
    stale = APIClient()
    stale.cookies[settings.SESSION_COOKIE_NAME] = planted_key
    assert stale.get(ME).status_code == 401


def test_login_missing_password_is_400_on_the_field(anon, user):
    response = anon.post(LOGIN, {"username": user.username}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()


# --- logout -----------------------------------------------------------------------------


def test_logout_is_204_and_the_session_is_gone_server_side(anon, user):
    anon.post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")
    old_key = anon.cookies[settings.SESSION_COOKIE_NAME].value
    assert Session.objects.filter(session_key=old_key).exists()

    response = anon.post(LOGOUT)

    assert response.status_code == 204
    assert not Session.objects.filter(session_key=old_key).exists()
    replay = APIClient()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_key
    assert replay.get(ME).status_code == 401


def test_logout_anonymous_is_401(anon):
    assert anon.post(LOGOUT).status_code == 401


# --- me ---------------------------------------------------------------------------------


def test_me_lists_the_callers_memberships_only(as_user, user):
    first = MembershipFactory(user=user, role=Role.OWNER).organization
    second = MembershipFactory(user=user, role=Role.VIEWER).organization
    MembershipFactory(role=Role.OWNER)  # someone else's organization
    OrganizationFactory()

    response = as_user(user).get(ME)

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["username"], body["email"]) == (user.pk, user.username, user.email)
    memberships = sorted(
        ({"organization": m["organization"], "role": m["role"]} for m in body["memberships"]),
        key=lambda m: m["organization"],
    )
    assert memberships == [
        {"organization": first.pk, "role": "owner"},
        {"organization": second.pk, "role": "viewer"},
    ]


def test_me_without_memberships(as_user, user):
    assert as_user(user).get(ME).json()["memberships"] == []


def test_me_anonymous_is_401(anon):
    response = anon.get(ME)

    assert response.status_code == 401
    assert "detail" in response.json()


# --- csrf -------------------------------------------------------------------------------


def test_csrf_sets_the_cookie(anon):
    response = anon.get(CSRF)

    assert response.status_code == 200
    assert response.cookies[settings.CSRF_COOKIE_NAME].value
    assert response.json()["csrftoken"]
