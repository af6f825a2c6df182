"""Slurm allocates whole CPUs, at least one per job: a request of 0.5 CPU would hold one on
a node, so four of them admitted on a 2-CPU cluster would really use 4. Every door refuses
what would hold more than the service counts (the Slurm backend's own refusal, the last
guard, is in runtime/tests/slurm/test_backend.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from conftest import client_for
from deployments.models import Deployment
from deployments.services import DeploymentSpec, deployment_create
from deployments.tests.factories import DeploymentFactory
from hypervisor.resources import Resources
from runtime.models import Runtime
from runtime.services import RuntimeCapacity, RuntimeSpec, runtime_add

pytestmark = pytest.mark.django_db
WHOLE_CPUS = "which allocates whole CPUs"


def add_runtime(name: str, kind: str, capacity: RuntimeCapacity | None = None) -> Runtime:
    endpoint = "/nonexistent/slurm.conf" if kind == "slurm" else "test:///default"
    spec = RuntimeSpec(
        name=name, kind=kind, endpoint=endpoint, options={}, credentials={}, capacity=capacity
    )
    return runtime_add(spec=spec)


@pytest.fixture
def hpc() -> Runtime:
    return add_runtime("hpc", "slurm")


@pytest.fixture
def on_slurm(organization, hpc) -> Cluster:
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=hpc)
    cluster.refresh_from_db()
    return cluster


def deployment_body(cluster: Cluster, cpu) -> dict:
    return {
        "cluster": cluster.pk,
        "name": "train",
        "image": "registry.example.com/team/trainer:1",
        "resources": {"cpu": cpu, "ram_mb": 64, "gpu": 0},
        "command": ["true"],
    }


@pytest.mark.parametrize("cpu", ["0.5", "1.25", 0])
def test_the_api_refuses_other_than_whole_cpus_on_slurm(developer, on_slurm, cpu):
    response = client_for(developer).post(
        "/api/v1/deployments", deployment_body(on_slurm, cpu), format="json"
    )

    assert response.status_code == 400
    [message] = response.json()["resources"]
    assert message.startswith(f"cpu {float(cpu):g}: runtime 'hpc' is slurm, {WHOLE_CPUS}")
    assert not Deployment.objects.exists()


def test_the_api_takes_half_a_cpu_where_no_slurm_runs_it(developer, organization):
    manual = ClusterFactory(organization=organization, capacity_cpu=2000)
    response = client_for(developer).post(
        "/api/v1/deployments", deployment_body(manual, "0.5"), format="json"
    )
    assert response.status_code == 201, response.json()


def test_the_service_refuses_it_for_every_caller(on_slurm):
    """The web form, the API and `manage.py demo` all create through this."""
    spec = DeploymentSpec(name="t", image="busybox:1", resources=Resources(500, 64, 0))
    with pytest.raises(ValidationError) as refused:
        deployment_create(actor=UserFactory(), cluster=on_slurm, spec=spec)
    [message] = refused.value.message_dict["resources"]
    assert WHOLE_CPUS in message
    assert not Deployment.objects.exists()


def test_the_web_form_shows_it_next_to_cpu(developer, organization, on_slurm, client):
    client.force_login(developer)
    url = reverse("web:deployment-new", args=[organization.pk])
    form = {
        "cluster": on_slurm.pk,
        "name": "train",
        "image": "registry.example.com/team/trainer:1",
        "cpu": "0.5",
        "ram_mb": "64",
        "gpu": "0",
        "priority": "0",
    }
    response = client.post(url, form)

    assert response.status_code == 400
    body = response.content.decode()
    cpu_field = body[body.rindex('<div class="field', 0, body.index('name="cpu"')) :]
    cpu_field = cpu_field[: cpu_field.index("</div>", cpu_field.index('name="cpu"'))]
    assert WHOLE_CPUS in body
    assert 'aria-invalid="true"' in cpu_field
    assert not Deployment.objects.exists()


def test_a_slurm_runtime_is_not_attached_where_fractional_work_waits(owner, organization, hpc):
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000)
    waiting = DeploymentFactory(cluster=cluster, cpu=500)
    url = f"/api/v1/clusters/{cluster.pk}"

    refused = client_for(owner).patch(url, {"runtime": "hpc"}, format="json")

    assert refused.status_code == 400
    [message] = refused.json()["runtime"]
    assert "1 deployment(s) of this cluster ask for a fraction of a CPU or none" in message
    cluster.refresh_from_db()
    assert cluster.runtime_id is None
    Deployment.objects.filter(pk=waiting.pk).update(cpu=1000)
    accepted = client_for(owner).patch(url, {"runtime": "hpc"}, format="json")
    assert accepted.status_code == 200, accepted.json()


def test_a_fractional_capacity_is_refused_on_slurm(owner, organization, hpc, on_slurm):
    body = {
        "organization": organization.pk,
        "name": "half",
        "capacity": {"cpu": 2.5, "ram_mb": 4096, "gpu": 0},
        "runtime": "hpc",
    }
    created = client_for(owner).post("/api/v1/clusters", body, format="json")
    assert created.status_code == 400
    assert WHOLE_CPUS in created.json()["capacity"][0]

    patched = client_for(owner).patch(
        f"/api/v1/clusters/{on_slurm.pk}",
        {"capacity": {"cpu": 1.5, "ram_mb": 4096, "gpu": 0}},
        format="json",
    )
    assert patched.status_code == 400
    assert WHOLE_CPUS in patched.json()["capacity"][0]

    manual = ClusterFactory(organization=organization, capacity_cpu=2500)
    attach = client_for(owner).patch(
        f"/api/v1/clusters/{manual.pk}", {"runtime": "hpc"}, format="json"
    )
    assert attach.status_code == 400
    assert WHOLE_CPUS in attach.json()["capacity"][0]


def test_a_slurm_runtime_with_a_fractional_capacity_is_refused():
    with pytest.raises(ValidationError) as refused:
        add_runtime("hpc2", "slurm", RuntimeCapacity(2500, 4096, 0))
    assert WHOLE_CPUS in refused.value.message_dict["capacity"][0]
    assert add_runtime("vms", "libvirt", RuntimeCapacity(2500, 4096, 0)).capacity_cpu == 2500
