"""Issue 16, findings 1, 5 and 6: one set of login limits for every door that checks a
password, keyed on the username as Django's login form normalizes it, refusing once the
count is reached whatever the password, without a word about whether it was right."""

from __future__ import annotations

import pytest
from django.contrib.auth.forms import UsernameField
from django.core.exceptions import ValidationError
from django.test import Client
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.logins import normalize_username
from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

API_LOGIN = "/api/v1/auth/login"
WEB_LOGIN = "/login/"
ADMIN_LOGIN = "/admin/login/"
BROWSABLE_LOGIN = "/api-auth/login/"
BAD_LINE = "correct username and password"


@pytest.fixture(autouse=True)
def _quick_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def dev(_quick_hashing):
    return UserFactory(username="dev", is_staff=True)


def _api(username: str, password: str, ip: str = "10.9.0.1"):
    body = {"username": username, "password": password}
    return APIClient().post(API_LOGIN, body, format="json", REMOTE_ADDR=ip)


def _page(url: str, username: str, password: str, ip: str = "10.9.0.1"):
    return Client().post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _signed_in(response) -> bool:
    return response.status_code in (200, 302) and "sessionid" in response.cookies


@pytest.mark.parametrize("door", [WEB_LOGIN, ADMIN_LOGIN, BROWSABLE_LOGIN])
def test_every_page_door_counts_failures_and_then_refuses_the_right_password(settings, dev, door):
    settings.RATELIMIT_LOGIN_USERNAME = "5/h"

    failures = [_page(door, "dev", f"guess-{i}", ip=f"10.9.1.{i}") for i in range(5)]
    right = _page(door, "dev", PASSWORD, ip="10.9.2.1")

    assert [f.status_code for f in failures] == [200] * 5
    assert right.status_code == 429 and right["Retry-After"] == "3600"
    assert "sessionid" not in right.cookies


@pytest.mark.parametrize("door", [ADMIN_LOGIN, BROWSABLE_LOGIN])
def test_every_page_door_has_the_per_ip_limit(settings, dev, door):
    settings.RATELIMIT_LOGIN_IP = "3/h"

    for i in range(3):
        _page(door, f"nobody{i}", "guess")

    refused = _page(door, "dev", PASSWORD)
    assert refused.status_code == 429 and refused["Retry-After"] == "3600"
    assert not _signed_in(refused)


def test_the_doors_share_one_counter(settings, dev):
    """Five failures at the API: the sixth attempt fails at every door, the right
    password included (the check was one late on the sign-in page)."""
    settings.RATELIMIT_LOGIN_USERNAME = "5/h"

    assert [_api("dev", f"g{i}").status_code for i in range(5)] == [400] * 5

    assert _page(WEB_LOGIN, "dev", PASSWORD).status_code == 429
    assert _page(ADMIN_LOGIN, "dev", PASSWORD).status_code == 429
    assert _api("dev", PASSWORD).status_code == 429


@pytest.mark.parametrize("spelling", [" dev", "dev ", "ｄｅｖ", "DEV", "\tdev\n"])  # noqa: RUF001
def test_every_spelling_the_form_normalizes_shares_the_counter(settings, dev, spelling):
    settings.RATELIMIT_LOGIN_USERNAME = "3/h"

    for i in range(3):
        assert _page(WEB_LOGIN, "dev", f"guess-{i}").status_code == 200

    assert _page(WEB_LOGIN, spelling, PASSWORD).status_code == 429
    assert _api(spelling, PASSWORD).status_code == 429


def test_the_api_normalizes_the_username_as_the_form_does(dev):
    assert _api("ｄｅｖ", PASSWORD).status_code == 200  # noqa: RUF001


def test_a_locked_out_page_says_the_same_for_a_right_and_a_wrong_password(settings, dev):
    settings.RATELIMIT_LOGIN_USERNAME = "2/h"
    for i in range(2):
        _page(WEB_LOGIN, "dev", f"guess-{i}")

    right = _page(WEB_LOGIN, "dev", PASSWORD)
    wrong = _page(WEB_LOGIN, "dev", "still-wrong")

    assert right.status_code == wrong.status_code == 429
    assert BAD_LINE not in right.content.decode()
    assert BAD_LINE not in wrong.content.decode()
    strip = [b"csrfmiddlewaretoken", b"value="]
    lines = [
        [line for line in r.content.splitlines() if not any(s in line for s in strip)]
        for r in (right, wrong)
    ]
    assert lines[0] == lines[1]


@hypothesis_settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=20))
def test_the_counter_key_is_the_username_the_login_form_checks(raw):
    """Property: whatever spelling a client sends, the counter's key is the key of the
    username Django's login form hands to `authenticate` (stripped, NFKC)."""
    try:
        form_username = UsernameField().clean(raw)
    except ValidationError:
        return  # empty once stripped: the form refuses it before any password check
    assert normalize_username(raw) == normalize_username(form_username)
