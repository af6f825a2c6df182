"""A cluster's `runtime`: attached by name, shown as {name, kind, status}, bounded by the
runtime's capacity, and fixed while deployments hold room."""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from clusters.models import Cluster
from clusters.services import ClusterChanges, cluster_create, cluster_update
from clusters.tests.factories import ClusterFactory
from conftest import client_for
from deployments.tests.factories import RunningDeploymentFactory
from hypervisor.resources import Resources
from orgs.tests.factories import OrganizationFactory
from runtime.models import Runtime
from runtime.services import RuntimeCapacity, RuntimeInUse, RuntimeSpec, runtime_add, runtime_remove

pytestmark = pytest.mark.django_db


def add_runtime(name: str, capacity: RuntimeCapacity | None = None, organizations=()) -> Runtime:
    spec = RuntimeSpec(
        name=name,
        kind="docker",
        endpoint="tcp://127.0.0.1:2376",
        options={},
        credentials={"client_cert": "a PEM text", "client_key": "secret"},
        capacity=capacity,
    )
    return runtime_add(spec=spec, organization_ids=[o.pk for o in organizations])


def cluster_body(organization, **fields) -> dict:
    return {
        "organization": organization.pk,
        "name": "c1",
        "capacity": {"cpu": 4, "ram_mb": 4096, "gpu": 0},
        **fields,
    }


def test_a_cluster_is_manual_unless_told(owner, organization):
    response = client_for(owner).post("/api/v1/clusters", cluster_body(organization), format="json")
    assert response.status_code == 201
    assert response.json()["runtime"] is None


def test_attach_at_creation_and_the_answer_hides_the_endpoint(owner, organization):
    add_runtime("local")
    response = client_for(owner).post(
        "/api/v1/clusters", cluster_body(organization, runtime="local"), format="json"
    )
    assert response.status_code == 201, response.json()
    runtime = response.json()["runtime"]
    assert {k: runtime[k] for k in ("name", "kind", "status")} == {
        "name": "local",
        "kind": "docker",
        "status": "ok",
    }
    assert runtime["status_since"]
    assert "test:///default" not in response.content.decode()
    assert "secret" not in response.content.decode()
    listed = client_for(owner).get("/api/v1/clusters").json()["results"][0]
    assert listed["runtime"]["name"] == "local"


@pytest.mark.parametrize("value", ["nothing", 7, "", ["local"]])
def test_an_unknown_or_malformed_runtime_is_400_naming_the_field(owner, organization, value):
    add_runtime("local")
    response = client_for(owner).post(
        "/api/v1/clusters", cluster_body(organization, runtime=value), format="json"
    )
    assert response.status_code == 400
    assert "runtime" in response.json()


def test_a_runtime_of_other_organizations_is_unavailable(owner, organization):
    add_runtime("theirs", organizations=[OrganizationFactory()])
    response = client_for(owner).post(
        "/api/v1/clusters", cluster_body(organization, runtime="theirs"), format="json"
    )
    assert response.status_code == 400
    assert response.json()["runtime"] == [
        "No runtime named 'theirs' is available to this organization."
    ]
    add_runtime("ours", organizations=[organization])
    response = client_for(owner).post(
        "/api/v1/clusters", cluster_body(organization, runtime="ours"), format="json"
    )
    assert response.status_code == 201


def test_patch_attaches_changes_and_detaches(owner, organization):
    add_runtime("one")
    add_runtime("two")
    cluster = ClusterFactory(organization=organization)
    client = client_for(owner)
    url = f"/api/v1/clusters/{cluster.pk}"
    assert client.patch(url, {"runtime": "one"}, format="json").json()["runtime"]["name"] == "one"
    assert client.patch(url, {"name": "renamed"}, format="json").json()["runtime"]["name"] == "one"
    assert client.patch(url, {"runtime": "two"}, format="json").json()["runtime"]["name"] == "two"
    assert client.patch(url, {"runtime": None}, format="json").json()["runtime"] is None


def test_changing_the_runtime_while_deployments_hold_room_is_409(owner, organization):
    add_runtime("one")
    cluster = ClusterFactory(organization=organization)
    RunningDeploymentFactory(cluster=cluster)
    response = client_for(owner).patch(
        f"/api/v1/clusters/{cluster.pk}", {"runtime": "one"}, format="json"
    )
    assert response.status_code == 409
    assert "hold room" in response.json()["detail"]
    cluster.refresh_from_db()
    assert cluster.runtime is None


def test_developers_cannot_attach(developer, organization):
    add_runtime("one")
    cluster = ClusterFactory(organization=organization)
    response = client_for(developer).patch(
        f"/api/v1/clusters/{cluster.pk}", {"runtime": "one"}, format="json"
    )
    assert response.status_code == 403


def test_a_runtimes_capacity_bounds_the_sum_of_its_clusters(owner, organization):
    add_runtime("small", capacity=RuntimeCapacity(cpu=6000, ram_mb=8192, gpu=0))
    client = client_for(owner)
    first = client.post(
        "/api/v1/clusters", cluster_body(organization, runtime="small"), format="json"
    )
    assert first.status_code == 201
    second = client.post(
        "/api/v1/clusters", cluster_body(organization, name="c2", runtime="small"), format="json"
    )
    assert second.status_code == 400
    assert "Runtime 'small' has room for 6 CPU" in second.json()["capacity"][0]
    smaller = cluster_body(organization, name="c2", runtime="small")
    smaller["capacity"] = {"cpu": 2, "ram_mb": 4096, "gpu": 0}
    assert client.post("/api/v1/clusters", smaller, format="json").status_code == 201
    # Growing an attached cluster is held to the same bound.
    grow = {"capacity": {"cpu": 5, "ram_mb": 4096, "gpu": 0}}
    response = client.patch(f"/api/v1/clusters/{first.json()['id']}", grow, format="json")
    assert response.status_code == 400
    # So is attaching an existing cluster.
    big = ClusterFactory(organization=organization)
    response = client.patch(f"/api/v1/clusters/{big.pk}", {"runtime": "small"}, format="json")
    assert response.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_concurrent_attachments_never_exceed_the_runtimes_capacity():
    organization = OrganizationFactory()
    add_runtime("shared", capacity=RuntimeCapacity(cpu=8000, ram_mb=8192, gpu=0))
    clusters = [ClusterFactory(organization=organization) for _ in range(6)]
    for cluster in clusters:
        Cluster.objects.filter(pk=cluster.pk).update(
            capacity_cpu=3000, capacity_ram_mb=1024, capacity_gpu=0
        )
    barrier = threading.Barrier(len(clusters) + 1)
    outcomes: list[str] = []

    def attach(cluster_id: int) -> None:
        barrier.wait()
        try:
            cluster_update(
                cluster_id=cluster_id, changes=ClusterChanges(runtime="shared", runtime_set=True)
            )
            outcomes.append("attached")
        except Exception as error:
            outcomes.append(f"{type(error).__name__}: {error}")
        finally:
            connection.close()

    new = threading.Thread(
        target=lambda: (
            barrier.wait(),
            _create_attached(organization),
            connection.close(),
        )
    )
    threads = [threading.Thread(target=attach, args=(c.pk,)) for c in clusters]
    for thread in [*threads, new]:
        thread.start()
    for thread in [*threads, new]:
        thread.join()
    attached = Cluster.objects.filter(runtime__name="shared")
    assert sum(c.capacity_cpu for c in attached) <= 8000
    assert attached.count() == 2, outcomes
    assert outcomes.count("attached") + int(attached.filter(name="new").exists()) == 2


def _create_attached(organization) -> None:
    with contextlib.suppress(ValidationError):  # refused: the runtime was full
        cluster_create(
            organization=organization,
            name="new",
            capacity=Resources(3000, 1024, 0),
            runtime="shared",
        )


def test_a_runtime_in_use_is_not_removed(owner, organization):
    add_runtime("busy")
    ClusterFactory(organization=organization, runtime=Runtime.objects.get(name="busy"))
    with pytest.raises(RuntimeInUse, match="attached to"):
        runtime_remove(name="busy")
