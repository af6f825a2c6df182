"""Django's checks, the migrations check, the OpenAPI validation and the configuration
file, each run as a subprocess the way an operator would run it."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
PRODUCTION_MARKER = "# === Production"
# What `check --deploy` needs to be clean; the production block must set each.
PRODUCTION_KEYS = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
}
ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def _base_env() -> dict[str, str]:
    """The process environment without any of our settings: only what the variables in
    a test say counts."""
    settings_names = _settings_read_by_settings_py()
    return {k: v for k, v in os.environ.items() if k not in settings_names}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _settings_read_by_settings_py() -> set[str]:
    source = (ROOT / "hypervisor" / "settings.py").read_text()
    names = set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
    assert len(names) > 20, names  # the pattern still finds them
    return names


def _env_example_lines() -> tuple[list[str], list[str]]:
    """The development part and the production part of `.env.example`."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    marker = next(i for i, line in enumerate(lines) if line.startswith(PRODUCTION_MARKER))
    return lines[:marker], lines[marker:]


def _production_env() -> dict[str, str]:
    _development, production = _env_example_lines()
    values = {}
    for line in production:
        match = ASSIGNMENT.match(line)
        if match:
            values[match.group(2)] = match.group(3)
    assert values.keys() >= PRODUCTION_KEYS, PRODUCTION_KEYS - values.keys()
    # The file leaves the key for the operator to generate; so does this test.
    values["SECRET_KEY"] = secrets.token_urlsafe(50)
    return {**_base_env(), **values}


# --- production -------------------------------------------------------------------------


def test_check_deploy_is_clean_with_the_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing silenced either: production runs with Redis, so no check needs hushing.
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stdout


def test_check_deploy_is_clean_with_debug_off_and_nothing_else_set():
    """Issue 16, finding 12: secure by default. `DEBUG=false` and a key were four
    warnings (secure cookies, SSL redirect, HSTS)."""
    env = {**_base_env(), "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50)}

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("entrypoint", "secret_key"),
    [
        (["manage.py", "check"], None),
        (["manage.py", "check"], ""),
        (["-c", "from hypervisor.wsgi import application"], None),
    ],
    ids=["manage.py-unset", "manage.py-empty", "wsgi-unset"],
)
def test_refuses_to_start_without_a_secret_key_when_debug_is_off(entrypoint, secret_key):
    env = {**_production_env(), "DEBUG": "false"}
    del env["SECRET_KEY"]
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key

    result = subprocess.run(
        [sys.executable, *entrypoint], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


# --- schema and migrations ------------------------------------------------------------


def test_openapi_schema_validates_without_warnings():
    # A fresh process: drf-spectacular counts warnings process-wide.
    env = {**_base_env(), "DEBUG": "true"}

    result = _manage("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull, env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr


@pytest.mark.django_db
def test_models_and_migrations_agree(capsys):
    call_command("makemigrations", check=True, dry_run=True)  # exits 1 on a change

    assert "No changes detected" in capsys.readouterr().out


# --- .env.example -----------------------------------------------------------------------


def test_env_example_documents_every_setting_with_a_comment():
    lines = ENV_EXAMPLE.read_text().splitlines()
    documented = {}
    for i, line in enumerate(lines):
        match = ASSIGNMENT.match(line)
        if match and match.group(2) not in documented:
            previous = lines[i - 1] if i else ""
            documented[match.group(2)] = previous.startswith("#") and not ASSIGNMENT.match(previous)

    missing = _settings_read_by_settings_py() - documented.keys()
    uncommented = sorted(name for name, has_comment in documented.items() if not has_comment)
    assert not missing, f"not in .env.example: {sorted(missing)}"
    assert not uncommented, f"no comment line above: {uncommented}"


def test_env_example_development_part_starts_the_project():
    """Its active lines, and nothing else, give a working development configuration."""
    development, _production = _env_example_lines()
    values = {}
    for line in development:
        match = ASSIGNMENT.match(line)
        if match and not match.group(1):
            values[match.group(2)] = match.group(3)
    assert values.get("DEBUG") == "true"

    result = _manage("check", "--fail-level", "WARNING", env={**_base_env(), **values})

    assert result.returncode == 0, result.stdout + result.stderr
