"""Issue 16, findings 3, 4 and 8: bounds on the work one request or one member causes.

A cascade is settled in bounded transactions: failing d1 of a chain d1 <- d2 <- ... used
to settle the whole chain in the request's transaction (141 s at 5,000 links, then a
timeout whose rollback left d1 running). Chains have a maximum depth, clusters and
organizations a maximum of waiting deployments.
"""

from __future__ import annotations

import django_rq
import pytest

from clusters.tests.factories import ClusterFactory
from deployments.models import Dependency, Deployment, Status
from deployments.services import _sweep_batch, dependencies_resolve_all
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory
from hypervisor.tests.workers import run_burst_worker
from scheduler.tests.guarantees import dependency_violations

pytestmark = pytest.mark.django_db(transaction=True)

DEPLOYMENTS = "/api/v1/deployments"


def _chain(cluster, length: int, head: Deployment | None = None) -> tuple[Deployment, list[int]]:
    """A running head and `length` pending deployments, each waiting on the one before."""
    head = head or RunningDeploymentFactory(cluster=cluster)
    previous, ids = head, []
    for _ in range(length):
        link = DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)
        Dependency.objects.create(dependent=link, dependency=previous, condition="succeeded")
        ids.append(link.pk)
        previous = link
    return head, ids


def _statuses(ids: list[int]) -> list[str]:
    by_pk = dict(Deployment.objects.filter(pk__in=ids).values_list("pk", "status"))
    return [by_pk[pk] for pk in ids]


@pytest.fixture
def cluster(organization):
    return ClusterFactory(organization=organization, capacity_cpu=64_000)


# --- cascades in bounded batches -----------------------------------------------------------


@pytest.mark.rq
def test_a_cascade_beyond_a_batch_commits_the_failure_alone_and_a_job_settles_the_rest(
    settings, owner, as_user, cluster
):
    settings.DEPENDENCY_CASCADE_BATCH = 10
    queue = django_rq.get_queue("default")
    queue.empty()
    head, chain = _chain(cluster, 60)

    failed = as_user(owner).post(f"{DEPLOYMENTS}/{head.pk}/fail")

    # The request's transaction holds the failure (and frees the room) and nothing else.
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    assert set(_statuses(chain)) == {Status.PENDING}
    assert queue.count >= 1
    worker = run_burst_worker(DEPENDENCY_CASCADE_BATCH="10")
    assert worker.returncode == 0, worker.stderr[-2000:]
    queue.empty()

    assert _statuses(chain) == [Status.CANCELLED] * 60
    first = Deployment.objects.get(pk=chain[0])
    assert f"dependency deployment {head.pk}" in first.status_reason


def test_in_the_embedded_mode_a_large_cascade_is_swept_after_the_commit(
    settings, owner, as_user, cluster
):
    settings.DEPENDENCY_CASCADE_BATCH = 7
    head, chain = _chain(cluster, 40)

    cancelled = as_user(owner).post(f"{DEPLOYMENTS}/{head.pk}/cancel")

    assert cancelled.status_code == 200
    assert _statuses(chain) == [Status.CANCELLED] * 40


def test_an_interrupted_sweep_leaves_nothing_inconsistent_and_the_safety_net_finishes(
    settings, cluster
):
    """A worker killed between two batches: every deployment is settled or still
    pending (never running on an unmet condition); the safety net completes it."""
    settings.DEPENDENCY_CASCADE_BATCH = 5
    head, chain = _chain(cluster, 23)
    Deployment.objects.filter(pk=head.pk).update(status=Status.FAILED)

    _sweep_batch(organization_id=cluster.organization_id, after_pk=head.pk)

    assert _statuses(chain) == [Status.CANCELLED] * 5 + [Status.PENDING] * 18
    assert dependency_violations(Deployment.objects.all()) == []
    dependencies_resolve_all()
    assert _statuses(chain) == [Status.CANCELLED] * 23


def test_a_cascade_within_a_batch_is_settled_in_the_request(settings, owner, as_user, cluster):
    settings.DEPENDENCY_CASCADE_BATCH = 200
    head, chain = _chain(cluster, 3)

    as_user(owner).post(f"{DEPLOYMENTS}/{head.pk}/complete")

    # Queued by the cascade, then started by the pass the same request ran.
    assert _statuses(chain) == [Status.RUNNING, Status.PENDING, Status.PENDING]


# --- chain depth ---------------------------------------------------------------------------


def _body(cluster, *depends_on: int) -> dict:
    return {
        "cluster": cluster.pk,
        "name": "step",
        "image": "registry.example.com/team/step:1",
        "resources": {"cpu": 1, "ram_mb": 64, "gpu": 0},
        "depends_on": list(depends_on),
    }


def test_a_chain_of_waiting_deployments_has_a_maximum_depth(settings, owner, as_user, cluster):
    settings.DEPENDENCY_MAX_DEPTH = 5
    api = as_user(owner)
    _head, chain = _chain(cluster, 3)

    fourth = api.post(DEPLOYMENTS, _body(cluster, chain[-1]), format="json")
    fifth = api.post(DEPLOYMENTS, _body(cluster, fourth.json()["id"]), format="json")
    sixth = api.post(DEPLOYMENTS, _body(cluster, fifth.json()["id"]), format="json")

    assert (fourth.status_code, fifth.status_code) == (201, 201)
    assert sixth.status_code == 400
    assert "at most 5 deep" in sixth.json()["depends_on"][0]
    # A branch off the middle of the chain is shallower, and allowed.
    assert api.post(DEPLOYMENTS, _body(cluster, chain[0]), format="json").status_code == 201


# --- waiting deployments per cluster and per organization ----------------------------------


def test_waiting_deployments_per_cluster_are_bounded(settings, owner, as_user, cluster):
    settings.DEPLOYMENT_MAX_WAITING_PER_CLUSTER = 3
    first, _ = DeploymentFactory.create_batch(
        2, cluster=cluster, status=Status.PENDING, queued_at=None
    )
    RunningDeploymentFactory(cluster=cluster)  # running: not waiting
    api = as_user(owner)
    third = api.post(DEPLOYMENTS, _body(cluster, first.pk), format="json")  # below the limit
    assert third.status_code == 201 and third.json()["status"] == Status.PENDING

    refused = api.post(DEPLOYMENTS, _body(cluster), format="json")

    assert refused.status_code == 400
    assert "3 waiting deployments" in refused.json()["cluster"][0]
    other = ClusterFactory(organization=cluster.organization, capacity_cpu=8000)
    assert api.post(DEPLOYMENTS, _body(other), format="json").status_code == 201


def test_waiting_deployments_per_organization_are_bounded(settings, owner, as_user, cluster):
    settings.DEPLOYMENT_MAX_WAITING_PER_ORGANIZATION = 4
    other = ClusterFactory(organization=cluster.organization, capacity_cpu=8000)
    DeploymentFactory.create_batch(2, cluster=cluster)
    DeploymentFactory.create_batch(2, cluster=other)

    refused = as_user(owner).post(DEPLOYMENTS, _body(other), format="json")

    assert refused.status_code == 400
    assert "organization already has 4" in refused.json()["cluster"][0]
