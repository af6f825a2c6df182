"""Malformed input on the accounts and organizations endpoints: 4xx, never 5xx (API.md)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from accounts.tests.factories import PASSWORD
from orgs.models import Membership, Organization, Role

pytestmark = pytest.mark.django_db

HUGE = "9" * 20  # beyond a 64-bit integer
BIGINT_MAX = str(2**63 - 1)
INT_MAX_PLUS_ONE = str(2**31)  # beyond auth_user.id (a 32-bit serial)


# --- ids in paths -----------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [HUGE, BIGINT_MAX, INT_MAX_PLUS_ONE, "0", "-1", "1.5", "abc"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/organizations/{id}"),
        ("delete", "/api/v1/organizations/{id}"),
        ("post", "/api/v1/organizations/{id}/invite-code"),
        ("get", "/api/v1/organizations/{id}/members"),
        ("patch", "/api/v1/organizations/{id}/members/1"),
        ("delete", "/api/v1/organizations/{id}/members/1"),
        ("patch", "/api/v1/organizations/{org}/members/{id}"),
        ("delete", "/api/v1/organizations/{org}/members/{id}"),
    ],
)
def test_odd_ids_in_paths_are_404(as_user, owner, organization, bad_id, method, path):
    url = path.format(id=bad_id, org=organization.pk)

    response = getattr(as_user(owner), method)(url, {"role": "viewer"}, format="json")

    assert response.status_code == 404, (url, response.status_code, response.content)
    assert response.json()["detail"]  # JSON out, even when no route matched


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here", "/api/v1/organizations/1/nothing", f"/api/v1/auth/{HUGE}"]
)
def test_unknown_api_paths_are_a_json_404(as_user, anon, user, method, path):
    for client in (anon, as_user(user)):
        response = getattr(client, method)(path)

        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found."}


# --- bodies -----------------------------------------------------------------------------

BODY_CASES = [
    # (path, body, the field named in the answer or "detail")
    ("/api/v1/auth/register", {}, "username"),
    ("/api/v1/auth/register", {"username": "ada"}, "password"),
    ("/api/v1/auth/register", {"username": ["ada"], "password": "x" * 12}, "username"),
    ("/api/v1/auth/register", {"username": "ada", "password": {"a": 1}}, "password"),
    ("/api/v1/auth/register", {"username": "ada", "password": "x" * 129}, "password"),
    ("/api/v1/auth/register", {"username": "a" * 151, "password": "plum-tractor-91"}, "username"),
    ("/api/v1/auth/register", {"username": "a d/a", "password": "plum-tractor-91"}, "username"),
    ("/api/v1/auth/register", {"username": "ada\x00", "password": "plum-tractor-91"}, "username"),
    ("/api/v1/auth/register", {"username": "ada", "password": "plum\x00tractor91"}, "password"),
    ("/api/v1/auth/register", {"username": "ada", "password": "plum-91", "email": 5}, "email"),
    ("/api/v1/auth/login", {}, "username"),
    ("/api/v1/auth/login", {"username": "ada"}, "password"),
    ("/api/v1/auth/login", {"username": None, "password": PASSWORD}, "username"),
    ("/api/v1/auth/login", {"username": "ada\x00", "password": PASSWORD}, "username"),
    ("/api/v1/auth/login", {"username": "ada", "password": ["x"]}, "password"),
    ("/api/v1/organizations", {}, "name"),
    ("/api/v1/organizations", {"name": ""}, "name"),
    ("/api/v1/organizations", {"name": None}, "name"),
    ("/api/v1/organizations", {"name": {"x": 1}}, "name"),
    ("/api/v1/organizations", {"name": "x" * 101}, "name"),
    ("/api/v1/organizations", {"name": "a\x00b"}, "name"),
    ("/api/v1/organizations/join", {}, "invite_code"),
    ("/api/v1/organizations/join", {"invite_code": 12345}, "invite_code"),
    ("/api/v1/organizations/join", {"invite_code": ["a"]}, "invite_code"),
    ("/api/v1/organizations/join", {"invite_code": "x" * 10_000}, "invite_code"),
    ("/api/v1/organizations/join", {"invite_code": "a\x00b"}, "invite_code"),
]


@pytest.mark.parametrize(("path", "body", "field"), BODY_CASES)
def test_wrong_types_and_missing_fields_are_400_naming_the_field(
    as_user, user, anon, path, body, field
):
    api = anon if path.startswith("/api/v1/auth/") else as_user(user)

    response = api.post(path, body, format="json")

    assert response.status_code == 400, (response.status_code, response.content)
    assert field in response.json(), response.json()
    assert not get_user_model().objects.filter(username="ada").exists()
    assert not Membership.objects.filter(user=user).exists()


@pytest.mark.parametrize("body", [b"{not json", b"", b"[]", b'"text"', b"null", b"42", b"\xff\xfe"])
@pytest.mark.parametrize(
    "path",
    ["/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/organizations",
     "/api/v1/organizations/join"],
)  # fmt: skip
def test_bodies_that_are_not_a_json_object_are_400(as_user, user, anon, path, body):
    api = anon if path.startswith("/api/v1/auth/") else as_user(user)

    response = api.post(path, body, content_type="application/json")

    assert response.status_code == 400, (response.status_code, response.content)
    assert response.json()  # a field error or {"detail": ...}, as JSON


def test_patch_member_with_a_body_that_is_not_an_object_is_400(
    as_user, owner, organization, developer
):
    url = f"/api/v1/organizations/{organization.pk}/members/{developer.pk}"

    for body in (b"{not json", b"[]", b'"admin"', b"null"):
        response = as_user(owner).patch(url, body, content_type="application/json")
        assert response.status_code == 400, (body, response.status_code, response.content)
    for body, field in (({}, "role"), ({"role": None}, "role"), ({"role": ["admin"]}, "role")):
        response = as_user(owner).patch(url, body, format="json")
        assert response.status_code == 400, (body, response.status_code)
        assert field in response.json()
    assert Membership.objects.get(organization=organization, user=developer).role == Role.DEVELOPER


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_at_all_is_refused_as_unsupported(as_user, user, content_type):
    """JSON only (API.md): another media type is 415, with a JSON answer."""
    response = as_user(user).post("/api/v1/organizations", "name=x", content_type=content_type)

    assert response.status_code == 415
    assert response.json()["detail"]
    assert not Organization.objects.exists()


def test_a_body_over_the_size_limit_is_refused(settings, as_user, user):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = as_user(user).post("/api/v1/organizations", {"name": "x" * 4096}, format="json")

    assert 400 <= response.status_code < 500
    assert not Organization.objects.exists()


@pytest.mark.parametrize("query", ["page=abc", "page=0", f"page={HUGE}", f"page_size={HUGE}",
                                   "page_size=-1", "page_size=abc", "page=2"])  # fmt: skip
def test_odd_pagination_parameters_are_not_a_server_error(as_user, owner, organization, query):
    response = as_user(owner).get(f"/api/v1/organizations?{query}")

    assert response.status_code in (200, 404), (response.status_code, response.content)


# --- every path with and without a trailing slash ---------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_every_path_answers_with_and_without_a_trailing_slash(
    slash, as_user, anon, owner, organization, developer, viewer, user
):
    org = f"/api/v1/organizations/{organization.pk}"
    api = as_user(owner)
    calls = [
        (anon, "get", "/api/v1/auth/csrf", None, 200),
        (anon, "post", "/api/v1/auth/register", {"username": "ada", "password": "plum-tractor-91"}, 201),
        (anon, "post", "/api/v1/auth/login", {"username": user.username, "password": PASSWORD}, 200),
        (anon, "get", "/api/v1/auth/me", None, 200),
        (anon, "post", "/api/v1/auth/logout", None, 204),
        (api, "get", "/api/v1/organizations", None, 200),
        (api, "post", "/api/v1/organizations", {"name": "new"}, 201),
        (as_user(user), "post", "/api/v1/organizations/join", {"invite_code": organization.invite_code}, 200),
        (api, "get", org, None, 200),
        (api, "get", f"{org}/members", None, 200),
        (api, "post", f"{org}/invite-code", None, 200),
        (api, "patch", f"{org}/members/{developer.pk}", {"role": "admin"}, 200),
        (api, "delete", f"{org}/members/{viewer.pk}", None, 204),
        (api, "delete", org, None, 204),
    ]  # fmt: skip

    for client, method, path, body, expected in calls:
        response = getattr(client, method)(path + slash, body, format="json")
        assert response.status_code == expected, (method, path + slash, response.content)
