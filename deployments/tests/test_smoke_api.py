import pytest

from clusters.tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_runs_then_queues_then_completes(owner, organization, as_user):
    api = as_user(owner)
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000)
    body = {
        "cluster": cluster.pk,
        "name": "a",
        "image": "python:3.11",
        "resources": {"cpu": 1.5, "ram_mb": 10, "gpu": 0},
    }
    first = api.post("/api/v1/deployments", body, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["status"] == "running"
    second = api.post("/api/v1/deployments", {**body, "name": "b"}, format="json")
    assert second.json()["status"] == "queued", second.json()
    done = api.post(f"/api/v1/deployments/{first.json()['id']}/complete")
    assert done.status_code == 200
    assert api.get(f"/api/v1/deployments/{second.json()['id']}").json()["status"] == "running"
    queue = api.get(f"/api/v1/clusters/{cluster.pk}/queue")
    assert queue.status_code == 200 and queue.json() == []
