"""API.md's rate limits, against the real Redis cache. The Makefile raises every rate for
the rest of the suite; these tests set small ones with the `settings` fixture. Rates are
per hour where the test does not need a minute: django-ratelimit's fixed windows would
otherwise reset mid-test about once in a thousand runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD, UserFactory
from clusters.tests.factories import ClusterFactory
from conftest import client_for
from orgs.models import Membership

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
JOIN = "/api/v1/organizations/join"
STRONG = "plum-tractor-velvet-91"


@pytest.fixture(autouse=True)
def _quick_hashing(settings):
    """The rate limits are under test here, not the password hasher (accounts' tests run
    the real one): a fast hasher keeps these many logins quick. Passwords still count."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(_quick_hashing, db):
    return UserFactory()  # hashed with the fast hasher


def _assert_limited(response, retry_after: int) -> None:
    assert response.status_code == 429, (response.status_code, response.content)
    assert response["Retry-After"] == str(retry_after)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


def _login(username: str, password: str, ip: str = "10.0.0.1"):
    body = {"username": username, "password": password}
    return APIClient().post(LOGIN, body, format="json", REMOTE_ADDR=ip)


# --- login per IP -----------------------------------------------------------------------


def test_login_per_ip(settings, user):
    settings.RATELIMIT_LOGIN_IP = "3/m"

    answers = [_login(user.username, PASSWORD).status_code for _ in range(3)]
    limited = _login(user.username, PASSWORD)

    assert answers == [200, 200, 200]
    _assert_limited(limited, 60)
    assert _login(user.username, PASSWORD, ip="10.0.0.2").status_code == 200


def test_login_per_ip_counts_failures_too(settings, user):
    settings.RATELIMIT_LOGIN_IP = "3/h"

    answers = [_login(f"nobody{i}", "wrong-password").status_code for i in range(3)]

    assert answers == [400, 400, 400]
    _assert_limited(_login(user.username, PASSWORD), 3600)


# --- failed logins per username ---------------------------------------------------------


def test_five_failures_lock_the_username_even_for_the_right_password(settings, user):
    """API.md: 5 failed attempts per minute per username. After the 5th, the right
    password does not get in either (else the 6th guess would tell a guesser it was right)."""
    settings.RATELIMIT_LOGIN_USERNAME = "5/m"

    # From five addresses: the username is what is counted.
    failures = [_login(user.username, f"guess-{i}", ip=f"10.0.1.{i}").status_code for i in range(5)]
    after = _login(user.username, PASSWORD, ip="10.0.2.1")

    assert failures == [400] * 5
    _assert_limited(after, 60)
    assert "sessionid" not in after.cookies
    # Another username is not affected, from the same address.
    other = UserFactory()
    assert _login(other.username, PASSWORD, ip="10.0.2.1").status_code == 200


def test_four_failures_still_let_the_right_password_in(settings, user):
    settings.RATELIMIT_LOGIN_USERNAME = "5/h"

    for i in range(4):
        assert _login(user.username, f"guess-{i}").status_code == 400

    assert _login(user.username, PASSWORD).status_code == 200


def test_the_username_is_counted_case_insensitively(settings, user):
    settings.RATELIMIT_LOGIN_USERNAME = "2/h"

    _login(user.username.upper(), "guess-1")
    _login(user.username.capitalize(), "guess-2")

    _assert_limited(_login(user.username, PASSWORD), 3600)


def test_whitespace_around_the_username_is_the_same_username(settings, user):
    """The login form trims the username; so must the counter, or each padding of it
    would get its own five guesses."""
    settings.RATELIMIT_LOGIN_USERNAME = "3/h"

    paddings = [f" {user.username}", f"{user.username} ", f"\t{user.username}\n"]
    failures = [_login(padded, "guess").status_code for padded in paddings]

    assert failures == [400, 400, 400]
    _assert_limited(_login(user.username, PASSWORD), 3600)


def test_successful_logins_do_not_count_against_the_username(settings, user):
    settings.RATELIMIT_LOGIN_USERNAME = "2/h"

    assert [_login(user.username, PASSWORD).status_code for _ in range(5)] == [200] * 5


# --- register per IP --------------------------------------------------------------------


def test_register_per_ip(settings):
    settings.RATELIMIT_REGISTER_IP = "2/h"
    client = APIClient()

    def register(name: str, ip: str = "10.0.3.1"):
        body = {"username": name, "password": STRONG}
        return client.post(REGISTER, body, format="json", REMOTE_ADDR=ip)

    assert [register("a").status_code, register("b").status_code] == [201, 201]
    _assert_limited(register("c"), 3600)
    assert not get_user_model().objects.filter(username="c").exists()
    assert register("d", ip="10.0.3.2").status_code == 201


# --- join per user ----------------------------------------------------------------------


def test_the_eleventh_join_attempt_is_429(settings, organization, user):
    settings.RATELIMIT_JOIN_USER = "10/h"
    api = client_for(user)

    guesses = [api.post(JOIN, {"invite_code": f"guess{i}"}, format="json") for i in range(10)]
    eleventh = api.post(JOIN, {"invite_code": organization.invite_code}, format="json")

    assert [g.status_code for g in guesses] == [400] * 10
    _assert_limited(eleventh, 3600)
    assert not Membership.objects.filter(user=user, organization=organization).exists()
    # Per user: someone else still joins.
    other = UserFactory()
    joined = client_for(other).post(JOIN, {"invite_code": organization.invite_code}, format="json")
    assert joined.status_code == 200


# --- any other unsafe request, per user -------------------------------------------------


def test_unsafe_requests_per_user(settings, user):
    settings.RATELIMIT_UNSAFE_USER = "3/m"
    api = client_for(user)

    created = [
        api.post("/api/v1/organizations", {"name": f"o{i}"}, format="json") for i in range(3)
    ]
    limited = api.post("/api/v1/organizations", {"name": "o4"}, format="json")

    assert [c.status_code for c in created] == [201, 201, 201]
    _assert_limited(limited, 60)
    assert Membership.objects.filter(user=user).count() == 3
    # Reads are not counted, and another user has their own budget.
    assert api.get("/api/v1/organizations").status_code == 200
    other = client_for(UserFactory())
    assert other.post("/api/v1/organizations", {"name": "x"}, format="json").status_code == 201


def test_unsafe_requests_count_every_unsafe_method(settings, owner, organization, developer):
    settings.RATELIMIT_UNSAFE_USER = "2/h"
    api = client_for(owner)
    member = f"/api/v1/organizations/{organization.pk}/members/{developer.pk}"

    assert api.patch(member, {"role": "viewer"}, format="json").status_code == 200
    assert api.post(f"/api/v1/organizations/{organization.pk}/invite-code").status_code == 200
    _assert_limited(api.delete(member), 3600)
    assert Membership.objects.filter(user=developer, organization=organization).exists()


# --- RATELIMIT_ENABLE=false -------------------------------------------------------------


def test_ratelimit_enable_false_turns_every_limit_off(settings, organization, user):
    settings.RATELIMIT_ENABLE = False
    settings.RATELIMIT_LOGIN_IP = "1/h"
    settings.RATELIMIT_LOGIN_USERNAME = "1/h"
    settings.RATELIMIT_REGISTER_IP = "1/h"
    settings.RATELIMIT_JOIN_USER = "1/h"
    settings.RATELIMIT_UNSAFE_USER = "1/h"
    api = client_for(user)

    logins = [_login(user.username, "wrong").status_code for _ in range(3)]
    logins.append(_login(user.username, PASSWORD).status_code)
    registers = [
        APIClient()
        .post(REGISTER, {"username": f"r{i}", "password": STRONG}, format="json")
        .status_code
        for i in range(3)
    ]
    joins = [
        api.post(JOIN, {"invite_code": organization.invite_code}, format="json").status_code
        for _ in range(3)
    ]

    assert logins == [400, 400, 400, 200]
    assert registers == [201, 201, 201]
    assert joins == [200, 200, 200]


# --- the defaults are API.md's ----------------------------------------------------------


def test_defaults_are_the_documented_rates():
    """Read the settings in a fresh process without the Makefile's raised rates."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATELIMIT_")}
    code = (
        "from django.conf import settings as s; print(s.RATELIMIT_ENABLE, s.RATELIMIT_LOGIN_IP,"
        " s.RATELIMIT_LOGIN_USERNAME, s.RATELIMIT_REGISTER_IP, s.RATELIMIT_JOIN_USER,"
        " s.RATELIMIT_UNSAFE_USER, s.RATELIMIT_READ_USER)"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**env, "DJANGO_SETTINGS_MODULE": "hypervisor.settings"},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.split() == ["True", "10/m", "5/m", "20/h", "10/m", "600/m", "600/m"]


# --- the expensive reads, per user (issue 16, finding 8) ---------------------------------


def test_expensive_reads_per_user(settings, owner, organization):
    settings.RATELIMIT_READ_USER = "3/h"
    cluster = ClusterFactory(organization=organization)
    api = client_for(owner)
    queue = f"/api/v1/clusters/{cluster.pk}/queue"

    reads = [api.get(queue).status_code, api.get("/api/v1/deployments").status_code]
    reads.append(api.get(f"/orgs/{organization.pk}/live/").status_code)
    limited = api.get(queue)

    assert reads == [200, 200, 200]
    _assert_limited(limited, 3600)
    # Cheap reads are not counted; another user has their own budget.
    assert api.get("/api/v1/auth/me").status_code == 200
    assert client_for(UserFactory()).get("/api/v1/deployments").status_code == 200
