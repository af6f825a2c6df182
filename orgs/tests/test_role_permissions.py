"""Role permissions are cached per process (orgs.selectors.role_permissions): an operator's
edit of a role's group must still be seen by the next request."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment
from orgs import selectors
from orgs.models import Role

# Cached only outside transactions: these tests commit, like requests do.
pytestmark = pytest.mark.django_db(transaction=True)

DEPLOYMENTS = "/api/v1/deployments"


def _submit(api, cluster) -> int:
    body = {
        "cluster": cluster.pk,
        "name": "job",
        "image": "python:3.11",
        "resources": {"cpu": 0.25, "ram_mb": 10, "gpu": 0},
    }
    return api.post(DEPLOYMENTS, body, format="json").status_code


def _edit_in_admin(group: Group, permissions: list[Permission]) -> None:
    operator = Client()
    operator.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:auth_group_change", args=[group.pk])
    body = {"name": group.name, "permissions": [p.pk for p in permissions]}
    response = operator.post(url, body)
    assert response.status_code == 302, response.content


def test_an_operators_edit_of_a_role_is_seen_by_the_next_request(developer, organization, as_user):
    api = as_user(developer)
    cluster = ClusterFactory(organization=organization)
    group = Group.objects.get(name=Role.DEVELOPER)
    granted = list(group.permissions.all())
    add = Permission.objects.get(codename="add_deployment")
    assert _submit(api, cluster) == 201
    assert group.pk in selectors._role_permissions  # the role is cached now

    _edit_in_admin(group, [p for p in granted if p != add])

    assert _submit(api, cluster) == 403
    _edit_in_admin(group, granted)
    assert _submit(api, cluster) == 201
    assert Deployment.objects.count() == 2


def test_an_edit_by_another_process_is_seen_after_the_ttl(developer, organization, as_user):
    """Another process's edit sends no signal here; the cache entry expires instead."""
    api = as_user(developer)
    cluster = ClusterFactory(organization=organization)
    group = Group.objects.get(name=Role.DEVELOPER)
    add = Permission.objects.get(codename="add_deployment")
    assert _submit(api, cluster) == 201
    with connection.cursor() as cursor:  # as another process would: no signal here
        cursor.execute(
            "DELETE FROM auth_group_permissions WHERE group_id = %s AND permission_id = %s",
            [group.pk, add.pk],
        )

    assert _submit(api, cluster) == 201  # within the TTL: the cached role
    expires, cached = selectors._role_permissions[group.pk]
    assert expires - time.monotonic() <= selectors.ROLE_PERMISSIONS_TTL_SECONDS
    selectors._role_permissions[group.pk] = (time.monotonic(), cached)  # the TTL has passed
    assert _submit(api, cluster) == 403


def test_a_rolled_back_edit_leaves_nothing_cached(developer, organization):
    group = Group.objects.get(name=Role.DEVELOPER)
    add = Permission.objects.get(codename="add_deployment")
    with pytest.raises(RuntimeError), transaction.atomic():
        group.permissions.remove(add)
        seen = selectors.organization_permissions(user=developer, organization_id=organization.pk)
        assert "deployments.add_deployment" not in seen
        raise RuntimeError("rolled back")

    after = selectors.organization_permissions(user=developer, organization_id=organization.pk)
    assert "deployments.add_deployment" in after
