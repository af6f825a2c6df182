"""The API tokens page: create (the secret shown once), list, revoke; only your own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import TOKENS_PER_USER, token_create
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKENS = reverse("web:tokens")


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_create_shows_the_token_once_and_it_works(user):
    page = client_as(user)

    created = page.post(TOKENS, {"name": "laptop", "expires_in_days": 30})

    assert created.status_code == 201
    token = ApiToken.objects.get(user=user)
    secret = created.context["secret"]
    assert f'value="{secret}"' in created.text
    assert "will not be shown again" in created.text
    assert "no-store" in created["Cache-Control"] or "no-cache" in created["Cache-Control"]
    assert token.expires_at - token.created_at == pytest.approx(
        timedelta(days=30), abs=timedelta(seconds=5)
    )
    later = page.get(TOKENS)
    assert "laptop" in later.text and secret not in later.text
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/auth/me").json()["username"] == user.username


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"name": "x", "expires_in_days": 366}, {"name": "x" * 101}]
)
def test_bad_input_is_400_with_the_fields_error(user, body):
    response = client_as(user).post(TOKENS, {"expires_in_days": 90, **body})

    assert response.status_code == 400
    assert 'class="errorlist' in response.text
    assert not ApiToken.objects.exists()


def test_the_limit_is_said_on_the_page(user):
    for i in range(TOKENS_PER_USER):
        token_create(user=user, name=f"t{i}")

    response = client_as(user).post(TOKENS, {"name": "one more", "expires_in_days": 90})

    assert response.status_code == 400
    assert "revoke one" in response.text


def test_revoke_stops_the_token_and_lists_the_rest(user):
    token_create(user=user, name="kept")
    revoked, secret = token_create(user=user, name="revoked")
    page = client_as(user)

    response = page.post(reverse("web:token-revoke", args=[revoked.pk]), follow=True)

    assert response.status_code == 200
    assert "Token revoked" in response.text
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["kept"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/auth/me").status_code == 401


def test_expired_tokens_are_marked(user):
    token, _ = token_create(user=user, name="old")
    ApiToken.objects.filter(pk=token.pk).update(
        created_at=timezone.now() - timedelta(days=3), expires_at=timezone.now() - timedelta(days=1)
    )

    assert '<span class="tag">expired</span>' in client_as(user).get(TOKENS).text


def test_another_users_token_is_neither_shown_nor_revocable(user):
    theirs, _ = token_create(user=UserFactory(), name="not-yours")
    page = client_as(user)

    assert "not-yours" not in page.get(TOKENS).text
    assert page.post(reverse("web:token-revoke", args=[theirs.pk])).status_code == 404
    assert page.get(reverse("web:token-revoke", args=[theirs.pk])).status_code == 405
    assert ApiToken.objects.filter(pk=theirs.pk).exists()


def test_visitors_are_sent_to_sign_in(db):
    response = Client().get(TOKENS)

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_every_page_links_to_the_tokens_page(user):
    assert f'href="{TOKENS}"' in client_as(user).get(reverse("web:home")).text
