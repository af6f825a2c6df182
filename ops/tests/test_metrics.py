"""/metrics: who may scrape, the cluster gauges from the database, and the scheduler's
counters observed after real passes."""

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.models import Status
from deployments.services import DeploymentSpec, deployment_create
from deployments.tests.factories import DeploymentFactory
from hypervisor.resources import Resources
from runtime.backends.base import RuntimeUnavailable
from runtime.gateway import gateway_for
from runtime.services import RuntimeSpec, runtime_add

pytestmark = pytest.mark.django_db


def samples(response) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels) -> float:
    wanted = {k: str(v) for k, v in labels.items()}
    matches = [
        v for (n, ls), v in found.items() if n == name and wanted.items() <= dict(ls).items()
    ]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


@pytest.fixture
def staff(as_user):
    return as_user(UserFactory(is_staff=True))


def test_anonymous_and_ordinary_users_get_404(anon, as_user, owner):
    assert anon.get("/metrics").status_code == 404
    assert as_user(owner).get("/metrics").status_code == 404


def test_staff_may_scrape(staff):
    response = staff.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_the_token_opens_it_when_configured(anon, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert anon.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
    assert anon.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert anon.get("/metrics", HTTP_AUTHORIZATION="s3cret-token").status_code == 404
    settings.METRICS_TOKEN = ""
    assert anon.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_cluster_gauges_come_from_the_database(staff, organization):
    cluster = ClusterFactory(organization=organization, capacity_cpu=4500, capacity_gpu=2)
    DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)
    DeploymentFactory(cluster=cluster)
    DeploymentFactory(cluster=cluster)
    found = samples(staff.get("/metrics"))
    ids = {"cluster_id": cluster.pk}
    assert value(found, "hypervisor_cluster_capacity", resource="cpu", **ids) == 4.5
    assert value(found, "hypervisor_cluster_capacity", resource="gpu", **ids) == 2
    assert value(found, "hypervisor_cluster_allocated", resource="cpu", **ids) == 0
    assert value(found, "hypervisor_cluster_running_deployments", **ids) == 0
    assert value(found, "hypervisor_cluster_waiting_deployments", status="queued", **ids) == 2
    assert value(found, "hypervisor_cluster_waiting_deployments", status="pending", **ids) == 1


def test_runtime_gauges_show_reachability_and_the_breaker(staff, settings):
    settings.RUNTIME_RETRY_ATTEMPTS = 1
    settings.RUNTIME_BREAKER_FAIL_MAX = 2
    spec = RuntimeSpec(
        name="gone", kind="docker", endpoint="unix:///nonexistent.sock", options={}, credentials={}
    )
    runtime = runtime_add(spec=spec)
    found = samples(staff.get("/metrics"))
    labels = {"runtime": "gone", "kind": "docker"}
    assert value(found, "hypervisor_runtime_up", **labels) == 1  # nothing tried yet
    assert value(found, "hypervisor_runtime_breaker_open", **labels) == 0
    for _ in range(2):
        with pytest.raises(RuntimeUnavailable):
            gateway_for(runtime).ping()
    found = samples(staff.get("/metrics"))
    assert value(found, "hypervisor_runtime_up", **labels) == 0
    assert value(found, "hypervisor_runtime_breaker_open", **labels) == 1
    runtime.refresh_from_db()
    since = value(found, "hypervisor_runtime_status_since_seconds", **labels)
    assert since == runtime.status_since.timestamp()


@pytest.mark.django_db(transaction=True)
def test_passes_starts_preemptions_and_queue_waits_are_counted(as_user):
    staff = as_user(UserFactory(is_staff=True))
    before = samples(staff.get("/metrics"))
    cluster = ClusterFactory(capacity_cpu=2000)
    actor = UserFactory()

    def submit(priority: int):
        spec = DeploymentSpec(
            name="job",
            image="registry.example.com/team/job:1",
            resources=Resources(2000, 64, 0),
            priority=priority,
        )
        deployment_create(actor=actor, cluster=cluster, spec=spec)

    submit(priority=1)  # starts
    submit(priority=7)  # preempts the first and starts
    after = samples(staff.get("/metrics"))

    def delta(name: str, **labels) -> float:
        old = [
            v
            for (n, ls), v in before.items()
            if n == name and {k: str(x) for k, x in labels.items()}.items() <= dict(ls).items()
        ]
        return value(after, name, **labels) - (old[0] if old else 0)

    assert delta("hypervisor_deployment_starts_total") == 2
    assert delta("hypervisor_deployment_preemptions_total") == 1
    assert delta("hypervisor_scheduling_pass_seconds_count") == 2
    assert delta("hypervisor_queue_wait_seconds_count", priority=7) == 1
    assert delta("hypervisor_queue_wait_seconds_count", priority=1) == 1
    assert value(after, "hypervisor_cluster_running_deployments", cluster_id=cluster.pk) == 1
    text = staff.get("/metrics").content.decode()
    assert re.search(r'hypervisor_queue_wait_seconds_bucket\{le="0\.05",priority="7"\}', text)
