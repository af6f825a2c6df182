"""/healthz and /readyz against the real database and Redis."""

import pytest


@pytest.mark.django_db
def test_healthz_answers_without_a_session(anon):
    response = anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert anon.get("/healthz/").status_code == 200


@pytest.mark.django_db
def test_readyz_checks_the_database_and_redis(anon, settings):
    assert settings.REDIS_URL  # make test configures Redis
    response = anon.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.django_db
def test_readyz_names_what_is_unreachable(anon, settings, monkeypatch):
    from ops import selectors

    # Nothing listens on port 1: a real refused connection, not a mock.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(selectors, "_redis_client", None)
    response = anon.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("unreachable")


@pytest.mark.django_db
def test_readyz_without_redis_configured_checks_only_the_database(anon, settings, monkeypatch):
    settings.REDIS_URL = ""
    response = anon.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok"}


@pytest.mark.django_db
def test_probes_refuse_unsafe_methods(anon):
    assert anon.post("/healthz").status_code == 405
