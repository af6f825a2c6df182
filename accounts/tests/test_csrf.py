"""CSRF, as a browser meets it: every unsafe request needs `X-CSRFToken` (API.md)."""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"


@pytest.fixture
def browser() -> APIClient:
    """A client that holds a `csrftoken` cookie (from GET /auth/csrf) and enforces CSRF."""
    client = APIClient(enforce_csrf_checks=True)
    assert client.get("/api/v1/auth/csrf").status_code == 200
    return client


def _token(client: APIClient) -> str:
    return client.cookies[settings.CSRF_COOKIE_NAME].value


def _login(client: APIClient, user, **headers):
    body = {"username": user.username, "password": PASSWORD}
    return client.post(LOGIN, body, format="json", headers=headers)


def test_login_without_the_header_is_403(browser, user):
    response = _login(browser, user)

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert settings.SESSION_COOKIE_NAME not in response.cookies


def test_login_with_a_wrong_header_is_403(browser, user):
    assert _login(browser, user, **{"X-CSRFToken": "x" * 32}).status_code == 403


def test_login_without_any_cookie_is_403(user):
    client = APIClient(enforce_csrf_checks=True)

    assert _login(client, user, **{"X-CSRFToken": "x" * 32}).status_code == 403


def test_login_with_the_header_passes(browser, user):
    response = _login(browser, user, **{"X-CSRFToken": _token(browser)})

    assert response.status_code == 200, response.json()


def test_login_rotates_the_csrf_token(browser, user):
    before = _token(browser)

    response = _login(browser, user, **{"X-CSRFToken": before})

    after = response.cookies[settings.CSRF_COOKIE_NAME].value
    assert after and after != before


def test_register_without_the_header_is_403_and_with_it_passes(browser):
    body = {"username": "ada", "password": "plum-tractor-velvet-91"}

    refused = browser.post(REGISTER, body, format="json")
    accepted = browser.post(REGISTER, body, format="json", headers={"X-CSRFToken": _token(browser)})

    assert refused.status_code == 403
    assert accepted.status_code == 201, accepted.json()


def test_authenticated_unsafe_request_needs_the_header(browser, user):
    _login(browser, user, **{"X-CSRFToken": _token(browser)})
    token = _token(browser)  # the rotated one

    refused = browser.post("/api/v1/organizations", {"name": "x"}, format="json")
    accepted = browser.post(
        "/api/v1/organizations", {"name": "x"}, format="json", headers={"X-CSRFToken": token}
    )

    assert refused.status_code == 403
    assert accepted.status_code == 201, accepted.json()
    # Reads need no token.
    assert browser.get("/api/v1/organizations").status_code == 200


def test_the_token_from_before_login_no_longer_works_after_it(browser, user):
    old = _token(browser)
    _login(browser, user, **{"X-CSRFToken": old})

    response = browser.post(
        "/api/v1/organizations", {"name": "x"}, format="json", headers={"X-CSRFToken": old}
    )

    assert response.status_code == 403


def test_logout_needs_the_header(browser, user):
    _login(browser, user, **{"X-CSRFToken": _token(browser)})

    assert browser.post("/api/v1/auth/logout").status_code == 403
    response = browser.post("/api/v1/auth/logout", headers={"X-CSRFToken": _token(browser)})
    assert response.status_code == 204
