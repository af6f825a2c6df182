"""The admin's index links the RQ dashboard, which staff (only) can open."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from orgs.models import Membership

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_index_links_the_rq_dashboard_and_the_pages():
    body = client_for(UserFactory(is_staff=True, is_superuser=True)).get("/admin/").content
    assert b'href="/django-rq/"' in body
    assert b'href="/"' in body


def test_rq_dashboard_is_for_staff_only(developer):
    staff = client_for(UserFactory(is_staff=True, is_superuser=True))
    response = staff.get("/django-rq/")
    assert response.status_code == 200 and b"default" in response.content
    assert client_for(developer).get("/django-rq/").status_code == 302
    assert Client().get("/django-rq/").status_code == 302


def test_user_page_lists_memberships(organization, viewer):
    staff = client_for(UserFactory(is_staff=True, is_superuser=True))
    body = staff.get(reverse("admin:auth_user_change", args=[viewer.pk])).content.decode()
    membership = Membership.objects.get(user=viewer)
    assert organization.name in body and membership.role.label in body
