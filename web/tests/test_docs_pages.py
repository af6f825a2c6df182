"""The API's documentation pages: the root, the browsable forms, Swagger and Redoc
offline, and the schema's examples run as they are on `manage.py demo`'s data."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_api_root_answers_with_links(anon):
    response = anon.get("/api/v1/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["deployments"].endswith("/api/v1/deployments")
    assert response.json()["join"].endswith("/api/v1/organizations/join")


def test_browsable_register_and_join_open_with_their_own_form():
    client = Client()
    register = client.get("/api/v1/auth/register", HTTP_ACCEPT="text/html")
    assert register.status_code == 200
    assert "password" in register.content.decode()
    client.force_login(UserFactory())
    join = client.get("/api/v1/organizations/join", HTTP_ACCEPT="text/html").content.decode()
    assert "invite_code" in join
    assert "&quot;name&quot;: &quot;&quot;" not in join and '"name": ""' not in join


def test_redoc_and_swagger_need_nothing_from_the_internet():
    client = Client()
    for url in ("/api/redoc", "/api/docs"):
        body = client.get(url).content.decode()
        assert not re.search(r"""(src|href)=["']https?://""", body), url
        assert "googleapis" not in body


def test_swagger_reads_the_csrf_cookie_on_every_request():
    page = Client().get("/api/docs").content.decode()
    assert '<script src="/api/docs?script="></script>' in page  # a file: no inline script
    body = Client().get("/api/docs?script=").content.decode()
    assert 'const cookieName = "csrftoken"' in body
    assert "window.fetch = " in body


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_the_schemas_examples_run_as_they_are_on_demo_data():
    """On a fresh database with the demo: sign in with the login example, then post the
    organization, cluster and deployment examples unchanged."""
    call_command("demo", force=True, stdout=StringIO())
    schema = APIClient().get("/api/schema", HTTP_ACCEPT="application/json").json()

    def example(path: str) -> dict:
        content = schema["paths"][f"{path}/"]["post"]["requestBody"]["content"]["application/json"]
        [only] = content["examples"].values()
        return only["value"]

    client = APIClient(enforce_csrf_checks=True)
    client.get("/api/v1/auth/csrf")
    csrf = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    assert (
        client.post(
            "/api/v1/auth/login", example("/api/v1/auth/login"), format="json", **csrf
        ).status_code
        == 200
    )
    csrf = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    for path in ("/api/v1/organizations", "/api/v1/clusters", "/api/v1/deployments"):
        response = client.post(path, example(path), format="json", **csrf)
        assert response.status_code == 201, (path, response.json())
