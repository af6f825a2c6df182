"""Issue 16, finding 11: docker-compose.yml puts the service behind a proxy; without
`RATELIMIT_IP_META_KEY` every client would share the proxy's bucket (ten bad logins a
minute from anyone would lock everyone out)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PROXY = "172.18.0.5"


def _compose_default(name: str) -> str:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    value = compose["services"]["web"]["environment"][name]
    # ${NAME:-default}: the value the stack runs with unless the operator overrides it.
    match = re.fullmatch(r"\$\{" + name + r":-(.+)\}", value)
    return match.group(1) if match else value


def _login(forwarded_for: str):
    return APIClient().post(
        "/api/v1/auth/login",
        {"username": "nobody", "password": "wrong"},
        format="json",
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


def test_behind_the_proxy_each_client_has_its_own_login_bucket(settings):
    settings.RATELIMIT_IP_META_KEY = _compose_default("RATELIMIT_IP_META_KEY")
    settings.RATELIMIT_LOGIN_IP = "3/h"

    first = [_login("203.0.113.1").status_code for _ in range(4)]
    other = _login("203.0.113.2")
    # A client cannot pick a fresh address: the proxy appends the one it saw.
    spoofed = _login("198.51.100.9, 203.0.113.1")

    assert first == [400, 400, 400, 429]
    assert other.status_code == 400
    assert spoofed.status_code == 429
