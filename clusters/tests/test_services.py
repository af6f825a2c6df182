"""Cluster services where the API alone cannot reach: the unique name decided by the
database when two requests race past the view's check."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from clusters.models import Cluster
from clusters.services import cluster_create
from hypervisor.resources import Resources
from orgs.tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def test_a_name_taken_in_a_race_is_a_validation_error_on_name():
    organization = OrganizationFactory()
    cluster_create(organization=organization, name="gpu", capacity=Resources(1000, 1, 0))

    # The view checked before the first one committed; the constraint now decides.
    with pytest.raises(ValidationError) as raised:
        cluster_create(organization=organization, name="gpu", capacity=Resources(1000, 1, 0))

    assert "name" in raised.value.message_dict
    assert Cluster.objects.filter(organization=organization).count() == 1


def test_the_same_name_in_another_organization_is_fine():
    capacity = Resources(1000, 1, 0)
    cluster_create(organization=OrganizationFactory(), name="gpu", capacity=capacity)
    cluster_create(organization=OrganizationFactory(), name="gpu", capacity=capacity)

    assert Cluster.objects.filter(name="gpu").count() == 2
