"""`command`, `env`, `exit_code` and `GET /deployments/{id}/logs` (API.md)."""

from __future__ import annotations

import time
import uuid

import pytest

from clusters.tests.factories import ClusterFactory
from conftest import client_for
from deployments.models import DeploymentLog
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory
from deployments.workloads import DEPLOYMENT_LABEL, workload_name, workload_spec
from runtime.backends.base import Phase
from runtime.gateway import gateway_for
from runtime.labels import INSTALLATION_LABEL, installation_id
from runtime.services import RuntimeSpec, runtime_add
from runtime.tests.engines import TEST_IMAGE

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(organization):
    return ClusterFactory(organization=organization)


def submit(user, cluster, **fields):
    body = {
        "cluster": cluster.pk,
        "name": "job",
        "image": "team/trainer:1",
        "resources": {"cpu": 1, "ram_mb": 64, "gpu": 0},
        **fields,
    }
    return client_for(user).post("/api/v1/deployments", body, format="json")


def test_command_and_env_are_kept_and_shown(developer, cluster):
    response = submit(
        developer, cluster, command=["python", "-c", "print(1)"], env={"A_B": "x", "_C1": ""}
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["command"] == ["python", "-c", "print(1)"]
    assert body["env"] == {"A_B": "x", "_C1": ""}
    assert body["exit_code"] is None
    shown = client_for(developer).get(f"/api/v1/deployments/{body['id']}").json()
    assert (shown["command"], shown["env"]) == (body["command"], body["env"])


def test_without_them_the_image_decides(developer, cluster):
    body = submit(developer, cluster).json()
    assert (body["command"], body["env"]) == (None, {})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("command", "echo hi"),
        ("command", ["echo", 1]),
        ("command", ["echo", None]),
        ("command", ["x"] * 65),
        ("command", ["x" * 4097]),
        ("command", ["nul\x00"]),
        ("command", {"a": "b"}),
        ("env", ["A=1"]),
        ("env", {"A": 1}),
        ("env", {"A": True}),
        ("env", {"A": None}),
        ("env", {"1A": "x"}),
        ("env", {"A-B": "x"}),
        ("env", {"": "x"}),
        ("env", {"É": "x"}),
        ("env", {"A\n": "x"}),
        ("env", {"A": "x" * 4097}),
        ("env", {f"V{i}": "x" for i in range(65)}),
        ("env", {"A": "nul\x00"}),
        ("env", None),
    ],
)
def test_bad_command_or_env_is_400_naming_the_field(developer, cluster, field, value):
    response = submit(developer, cluster, **{field: value})
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_the_limits_themselves_are_accepted(developer, cluster):
    response = submit(
        developer,
        cluster,
        command=["x" * 4096] * 64,
        env={f"V{i}": "x" * 4096 for i in range(64)},
    )
    assert response.status_code == 201


def test_the_workload_of_a_deployment(settings):
    settings.HYPERVISOR_INSTALLATION_ID = "site-a"
    deployment = DeploymentFactory(
        command=["sh", "-c", "true"], env={"A": "1"}, cpu=1500, ram_mb=256, gpu=1
    )
    spec = workload_spec(deployment)
    assert spec.name == f"hv-site-a-{deployment.pk}" == workload_name(deployment.pk)
    assert spec.labels == {INSTALLATION_LABEL: "site-a", DEPLOYMENT_LABEL: str(deployment.pk)}
    assert (spec.command, spec.env) == (("sh", "-c", "true"), {"A": "1"})
    assert (spec.cpu_millicores, spec.ram_mb, spec.gpu) == (1500, 256, 1)


# --- logs -------------------------------------------------------------------------------


def logs(user, deployment, query: str = ""):
    return client_for(user).get(f"/api/v1/deployments/{deployment.pk}/logs{query}")


def test_a_manual_cluster_has_no_lines(viewer, cluster):
    deployment = RunningDeploymentFactory(cluster=cluster)
    response = logs(viewer, deployment)
    assert response.status_code == 200
    assert response.json() == {"lines": [], "truncated": False, "source": "manual"}


def test_kept_lines_are_served_with_tail(viewer, cluster):
    cluster.runtime = runtime_add(
        spec=RuntimeSpec(
            name="dk", kind="docker", endpoint="unix:///nonexistent", options={}, credentials={}
        )
    )
    cluster.save()
    deployment = DeploymentFactory(cluster=cluster, status="completed", exit_code=0)
    DeploymentLog.objects.create(
        deployment=deployment, lines=[f"line {i}" for i in range(300)], source="docker"
    )
    body = logs(viewer, deployment).json()
    assert body["lines"] == [f"line {i}" for i in range(100, 300)]  # default tail: 200
    assert (body["truncated"], body["source"]) == (True, "docker")
    body = logs(viewer, deployment, "?tail=10000").json()
    assert (len(body["lines"]), body["truncated"]) == (300, False)
    assert logs(viewer, deployment, "?tail=2").json()["lines"] == ["line 298", "line 299"]


@pytest.mark.parametrize("tail", ["0", "10001", "x", "1.5", "-1"])
def test_a_bad_tail_is_400(viewer, cluster, tail):
    deployment = DeploymentFactory(cluster=cluster)
    response = logs(viewer, deployment, f"?tail={tail}")
    assert response.status_code == 400
    assert "tail" in response.json()


def test_logs_of_another_organization_are_404(outsider, cluster):
    deployment = DeploymentFactory(cluster=cluster)
    assert logs(outsider, deployment).status_code == 404


@pytest.mark.engine
def test_a_live_workloads_lines_come_from_the_engine(viewer, cluster, docker_engine):
    cluster.runtime = runtime_add(
        spec=RuntimeSpec(
            name=f"dk-{uuid.uuid4().hex[:6]}",
            kind="docker",
            endpoint=docker_engine.endpoint,
            options={"network": "none"},
            credentials={},
        )
    )
    cluster.save()
    deployment = RunningDeploymentFactory(
        cluster=cluster,
        image=TEST_IMAGE,
        command=["sh", "-c", "for i in 1 2 3 4 5; do echo out $i; done; sleep 30"],
        env={},
        cpu=100,
        ram_mb=64,
    )
    gateway = gateway_for(cluster.runtime)
    assert gateway.start(workload_spec(deployment)).phase == Phase.RUNNING
    try:
        deadline = time.monotonic() + 10
        while len(logs(viewer, deployment).json()["lines"]) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        body = logs(viewer, deployment, "?tail=3").json()
        assert body == {"lines": ["out 3", "out 4", "out 5"], "truncated": True, "source": "docker"}
        assert logs(viewer, deployment).json()["truncated"] is False
        labels = docker_engine.client().containers.get(workload_name(deployment.pk)).labels
        assert labels == {
            INSTALLATION_LABEL: installation_id(),
            DEPLOYMENT_LABEL: str(deployment.pk),
        }
    finally:
        gateway.remove(workload_name(deployment.pk))
