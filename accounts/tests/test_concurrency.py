"""Registering the same username at the same moment: one account, the other a 400."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("spellings", [["ada"] * 4, ["ada", "Ada", "ADA", "aDa"]])
def test_concurrent_registrations_of_one_username_make_one_account(spellings):
    """Also in different letter cases: the database's lower(username) index decides."""
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def register(username: str, password: str) -> None:
        try:
            barrier.wait(timeout=10)
            body = {"username": username, "password": password}
            statuses.append(
                APIClient().post("/api/v1/auth/register", body, format="json").status_code
            )
        finally:
            connection.close()

    threads = [
        threading.Thread(target=register, args=(name, f"plum-tractor-velvet-{i}"))
        for i, name in enumerate(spellings)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [201, 400, 400, 400]
    assert get_user_model().objects.filter(username__iexact="ada").count() == 1
