"""Issue 16, finding 14: while the database is unreachable, requests answer 503 with
`Retry-After` (like /readyz), never 500. PostgreSQL is made really unreachable for
the requests: the connection is closed and pointed at a port nobody listens on."""

from __future__ import annotations

import socket

import pytest
from django.db import connection
from django.test import Client

from conftest import client_for
from hypervisor.errors import server_error

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free once the socket closes: nobody listens


def _assert_unavailable(response, *, json: bool) -> None:
    assert response.status_code == 503, (response.status_code, response.content[:300])
    assert response["Retry-After"] == "5"
    if json:
        assert response.json()["detail"]


def test_api_reads_and_writes_are_503_while_the_database_is_down(owner):
    api = client_for(owner)
    api.raise_request_exception = False

    def requests():
        return [
            api.get("/api/v1/organizations"),
            api.get("/api/v1/auth/me"),
            api.post("/api/v1/organizations", {"name": "x"}, format="json"),
            api.post("/api/v1/auth/login", {"username": "a", "password": "b"}, format="json"),
        ]

    with _down():
        answers = requests()

    for response in answers:
        _assert_unavailable(response, json=True)
    # Back up: the same client is served again.
    assert api.get("/api/v1/organizations").status_code == 200


def test_pages_are_503_while_the_database_is_down(owner, organization):
    page = Client(raise_request_exception=False)
    page.force_login(owner)

    with _down():
        answers = [page.get("/"), page.get(f"/orgs/{organization.pk}/"), page.get("/admin/")]

    for response in answers:
        _assert_unavailable(response, json=False)


def test_other_server_errors_stay_500():
    request = Client().get("/").wsgi_request
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        response = server_error(request)

    assert response.status_code == 500
    assert "Retry-After" not in response


class _down:
    """PostgreSQL unreachable inside the block: the connection closed and pointed at a
    port nobody listens on; restored (and reconnected on next use) after it."""

    def __enter__(self):
        self._saved = dict(connection.settings_dict)
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))

    def __exit__(self, *exc):
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(self._saved)
