"""The project's ModelSerializer builds fields once per class: each instance still gets
fields of its own, so a view scoping one request's queryset cannot leak into another's."""

from __future__ import annotations

import pytest

from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from conftest import client_for
from deployments.api.serializers import DeploymentCreateSerializer, DeploymentSerializer
from orgs.models import Role
from orgs.tests.factories import MembershipFactory


def test_each_instance_gets_its_own_fields():
    first, second = DeploymentCreateSerializer(), DeploymentCreateSerializer()
    scoped = Cluster.objects.none()
    first.fields["cluster"].queryset = scoped
    assert first.fields["cluster"] is not second.fields["cluster"]
    assert second.fields["cluster"].queryset is not scoped
    assert DeploymentCreateSerializer().fields["cluster"].queryset is not scoped
    assert second.fields["cluster"].parent is second


def test_a_subclass_builds_its_own_fields():
    # The create serializer reads depends_on as ids or objects; the answer shows links.
    read = DeploymentSerializer().fields["depends_on"]
    write = DeploymentCreateSerializer().fields["depends_on"]
    assert type(read).__name__ == "SerializerMethodField"
    assert type(write).__name__ == "DependsOnField"


@pytest.mark.django_db
def test_a_scoped_cluster_field_does_not_outlive_its_request():
    ours, theirs = ClusterFactory(), ClusterFactory()
    we = MembershipFactory(organization=ours.organization, role=Role.DEVELOPER).user
    they = MembershipFactory(organization=theirs.organization, role=Role.DEVELOPER).user
    body = {"name": "job", "image": "python:3.11", "resources": {"cpu": 1, "ram_mb": 64, "gpu": 0}}

    assert (
        client_for(we)
        .post("/api/v1/deployments", {**body, "cluster": ours.pk}, format="json")
        .status_code
        == 201
    )
    # Had our request's scope stuck to the class, their request would see our cluster.
    response = client_for(they).post(
        "/api/v1/deployments", {**body, "cluster": ours.pk}, format="json"
    )
    assert response.status_code == 400
    assert "cluster" in response.json()
    assert (
        client_for(they)
        .post("/api/v1/deployments", {**body, "cluster": theirs.pk}, format="json")
        .status_code
        == 201
    )
