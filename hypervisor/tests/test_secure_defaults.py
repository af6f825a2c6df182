"""Issue 16, finding 12: secure by default when DEBUG is off, and a Content-Security-Policy
on the pages. (`check --deploy` with nothing else set: `test_checks.py`.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SECURITY_NAMES = (
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
)


def _settings_with(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in SECURITY_NAMES and k != "DEBUG"}
    code = (
        "from django.conf import settings as s; print("
        + ", ".join(f"s.{name}" for name in SECURITY_NAMES)
        + ")"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**base, "DJANGO_SETTINGS_MODULE": "hypervisor.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.split()


def test_debug_off_turns_every_https_setting_on():
    assert _settings_with(DEBUG="false") == ["True", "True", "True", "31536000", "True", "True"]


def test_each_can_be_turned_off_for_a_proxy_that_terminates_tls():
    off = _settings_with(DEBUG="false", SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0")
    assert off == ["True", "True", "False", "0", "True", "True"]


def test_debug_on_keeps_plain_http_for_development():
    assert _settings_with(DEBUG="true") == ["False", "False", "False", "0", "False", "False"]


@pytest.mark.parametrize("path", ["/login/", "/admin/login/", "/api/docs", "/api/v1/auth/csrf"])
def test_every_answer_carries_the_policy(path):
    policy = Client().get(path)["Content-Security-Policy"]

    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy


def test_swagger_ui_starts_without_an_inline_script():
    page = Client().get("/api/docs").content.decode()
    script = Client().get("/api/docs", {"script": ""})

    assert "<script>" not in page
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
