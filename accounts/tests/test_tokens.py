"""API tokens (API.md, Accounts): created with a session or a token, shown once, stored
only as a hash, `Authorization: Bearer` with no CSRF, expiry, revocation, the per-user
limit, and isolation between users."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import TOKENS_PER_USER, token_create
from accounts.tests.factories import UserFactory
from orgs.models import Role
from orgs.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/auth/tokens"
ME = "/api/v1/auth/me"
ORGANIZATIONS = "/api/v1/organizations"
FIELDS = {"id", "name", "token", "created_at", "expires_at", "last_used_at"}


def bearer(secret: str) -> APIClient:
    """A client with no session that enforces CSRF as a browser's request would meet it."""
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _create(api: APIClient, **body) -> dict:
    response = api.post(TOKENS, {"name": "ci", **body}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_answers_the_token_once_and_list_never_shows_it(user, as_user):
    api = as_user(user)
    created = _create(api, name="laptop")

    assert set(created) == FIELDS
    assert created["name"] == "laptop"
    assert created["token"].startswith("hv_") and len(created["token"]) > 40
    assert created["last_used_at"] is None
    listed = api.get(TOKENS).json()
    assert listed["count"] == 1
    assert listed["results"] == [{k: v for k, v in created.items() if k != "token"}]


def test_the_database_holds_only_a_hash_of_the_token(user, as_user):
    secret = _create(as_user(user))["token"]

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        row = " ".join(str(value) for value in cursor.fetchone())
    assert secret not in row
    assert secret.removeprefix("hv_") not in row
    assert ApiToken.objects.get().digest != secret


def test_a_token_authenticates_any_endpoint_without_session_or_csrf(owner, organization):
    secret = _create_for(owner)

    me = bearer(secret).get(ME)
    created = bearer(secret).post(ORGANIZATIONS, {"name": "by-script"}, format="json")

    assert me.status_code == 200 and me.json()["username"] == owner.username
    assert created.status_code == 201, created.json()
    assert "sessionid" not in created.cookies


def test_the_same_write_with_a_session_and_no_csrf_header_is_refused(owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)

    assert client.post(ORGANIZATIONS, {"name": "x"}, format="json").status_code == 403


def test_a_token_creates_and_lists_tokens_too(user):
    secret = _create_for(user)

    response = bearer(secret).post(TOKENS, {"name": "second"}, format="json")

    assert response.status_code == 201
    assert bearer(secret).get(TOKENS).json()["count"] == 2


def test_a_token_acts_with_its_users_roles(organization, viewer, outsider):
    foreign = MembershipFactory(role=Role.OWNER).organization
    api = bearer(_create_for(viewer))
    body = {
        "organization": organization.pk,
        "name": "c",
        "capacity": {"cpu": 1, "ram_mb": 1, "gpu": 0},
    }

    assert api.post("/api/v1/clusters", body, format="json").status_code == 403
    assert api.get(f"{ORGANIZATIONS}/{foreign.pk}").status_code == 404
    assert api.get(f"{ORGANIZATIONS}/{organization.pk}").status_code == 200


def test_expiry_defaults_to_90_days_and_accepts_up_to_365(user, as_user):
    api = as_user(user)
    default = _create(api)
    longest = _create(api, expires_in_days=365)
    shortest = _create(api, expires_in_days=1)

    def days(token: dict) -> float:
        created = timezone.datetime.fromisoformat(token["created_at"])
        expires = timezone.datetime.fromisoformat(token["expires_at"])
        return (expires - created) / timedelta(days=1)

    assert days(default) == pytest.approx(90, abs=0.01)
    assert days(longest) == pytest.approx(365, abs=0.01)
    assert days(shortest) == pytest.approx(1, abs=0.01)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "expires_in_days": 366}, "expires_in_days"),
        ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "x", "expires_in_days": 1.5}, "expires_in_days"),
        ({"name": "x", "expires_in_days": None}, "expires_in_days"),
        ({"name": "x", "expires_in_days": 10**30}, "expires_in_days"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 5}, "name"),
        ({"name": True}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({}, "name"),
    ],
)
def test_bad_token_requests_are_400_naming_the_field(user, as_user, body, field):
    response = as_user(user).post(TOKENS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not ApiToken.objects.exists()


def test_an_expired_token_is_401(user):
    secret = _create_for(user)
    ApiToken.objects.update(
        created_at=timezone.now() - timedelta(days=2), expires_at=timezone.now()
    )

    response = bearer(secret).get(ME)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoking_stops_the_token_at_once(user, as_user):
    created = _create(as_user(user))
    api = bearer(created["token"])
    assert api.get(ME).status_code == 200

    revoked = api.delete(f"{TOKENS}/{created['id']}")

    assert revoked.status_code == 204
    assert api.get(ME).status_code == 401
    assert bearer(created["token"]).post(TOKENS, {"name": "again"}).status_code == 401
    assert as_user(user).get(TOKENS).json()["count"] == 0


def test_another_users_token_is_404_and_keeps_working(user, as_user):
    theirs = _create(as_user(UserFactory()))
    mine = _create(as_user(user))
    api = as_user(user)

    assert api.delete(f"{TOKENS}/{theirs['id']}").status_code == 404
    assert api.delete(f"{TOKENS}/999999999").status_code == 404
    assert [t["id"] for t in api.get(TOKENS).json()["results"]] == [mine["id"]]
    assert bearer(theirs["token"]).get(ME).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer hv_nope", "Bearer a b", "bearer hv_unknown", "Bearer \xe9t\xe9"],
)
def test_a_bearer_header_that_does_not_work_is_401(user, header):
    _create_for(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(ME)

    assert response.status_code == 401
    assert "detail" in response.json()


def test_a_token_of_a_deactivated_user_is_401(user):
    secret = _create_for(user)
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert bearer(secret).get(ME).status_code == 401


def test_use_is_recorded_in_last_used_at(user):
    secret = _create_for(user)

    bearer(secret).get(ME)

    token = ApiToken.objects.get()
    assert token.last_used_at is not None
    assert timezone.now() - token.last_used_at < timedelta(seconds=10)


def test_anonymous_callers_cannot_touch_tokens(anon):
    assert anon.get(TOKENS).status_code == 401
    assert anon.post(TOKENS, {"name": "x"}, format="json").status_code == 401


def test_at_most_50_unexpired_tokens_per_user(user, as_user):
    for i in range(TOKENS_PER_USER):
        token_create(user=user, name=f"t{i}")
    api = as_user(user)

    refused = api.post(TOKENS, {"name": "one-too-many"}, format="json")
    ApiToken.objects.filter(name="t0").update(
        created_at=timezone.now() - timedelta(days=2), expires_at=timezone.now()
    )
    after_one_expired = api.post(TOKENS, {"name": "replacement"}, format="json")

    assert refused.status_code == 400
    assert str(TOKENS_PER_USER) in refused.json()["detail"][0]
    assert after_one_expired.status_code == 201
    assert as_user(UserFactory()).post(TOKENS, {"name": "x"}, format="json").status_code == 201


def test_token_writes_share_the_per_user_unsafe_rate_limit(settings, user):
    settings.RATELIMIT_UNSAFE_USER = "2/m"
    api = bearer(_create_for(user))

    statuses = [
        api.post(ORGANIZATIONS, {"name": f"o{i}"}, format="json").status_code for i in range(3)
    ]

    assert statuses == [201, 201, 429]
    assert int(api.post(ORGANIZATIONS, {"name": "x"}, format="json")["Retry-After"]) > 0


def test_token_reads_share_the_per_user_expensive_read_limit(settings, owner, organization):
    settings.RATELIMIT_READ_USER = "2/m"
    api = bearer(_create_for(owner))

    statuses = [api.get("/api/v1/deployments").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert api.get(ME).status_code == 200  # a cheap read is not counted


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_never_pass_the_limit(user):
    for i in range(TOKENS_PER_USER - 2):
        token_create(user=user, name=f"t{i}")
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def create() -> None:
        try:
            client = APIClient()
            client.force_login(user)
            barrier.wait(timeout=10)
            statuses.append(client.post(TOKENS, {"name": "race"}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [201, 201, 400, 400, 400, 400]
    assert ApiToken.objects.filter(user=user).count() == TOKENS_PER_USER


def _create_for(user) -> str:
    return token_create(user=user, name="test")[1]


def test_staff_list_and_revoke_tokens_in_the_admin_but_never_see_a_secret(user):
    token, secret = token_create(user=user, name="leaked-laptop")
    staff = Client()
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))

    listed = staff.get("/admin/accounts/apitoken/")
    detail = staff.get(f"/admin/accounts/apitoken/{token.pk}/change/")
    deleted = staff.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"})

    assert listed.status_code == 200 and "leaked-laptop" in listed.text
    assert secret not in listed.text + detail.text and token.digest not in detail.text
    assert staff.get("/admin/accounts/apitoken/add/").status_code == 403
    assert deleted.status_code == 302
    assert bearer(secret).get(ME).status_code == 401
