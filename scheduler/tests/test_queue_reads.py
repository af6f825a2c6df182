"""Reads of the queue that do not grow with it (scheduler/selectors.py): the index order
is the planner's order, pages are slices of it, positions are counts by its key."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

import planner
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.locking import lock_schedulable
from deployments.models import Dependency, Deployment, Status
from deployments.tests.factories import DeploymentFactory
from scheduler.selectors import QUEUE_PAGE_MAX, cluster_queue, queue_position
from scheduler.services import schedule_cluster, snapshot_of

pytestmark = pytest.mark.django_db


def _random_cluster(rng: random.Random) -> Cluster:
    cluster = ClusterFactory(
        capacity_cpu=rng.choice([2000, 4000, 8000]),
        capacity_gpu=rng.choice([0, 2]),
        policy=rng.choice(["fifo", "pack"]),
        starvation_after_seconds=rng.choice([None, 60, 600]),
    )
    now = timezone.now()
    for _ in range(rng.randint(1, 40)):
        DeploymentFactory(
            cluster=cluster,
            cpu=rng.choice([500, 1000, 2000, 3000, 9000]),
            gpu=rng.choice([0, 0, 1]) if cluster.capacity_gpu else 0,
            priority=rng.choice([0, 0, 1, 5]),
            preemptible=rng.random() < 0.8,
            # Ties on queued_at too: the id decides then.
            queued_at=now - timedelta(seconds=rng.choice([0, 0, 30, 120, 900, 3600])),
        )
    elsewhere = DeploymentFactory()  # queued on another cluster
    for _ in range(rng.randint(0, 3)):
        waiting = DeploymentFactory(
            cluster=cluster, status=Status.PENDING, queued_at=None, priority=rng.choice([0, 5])
        )
        Dependency.objects.create(dependency=elsewhere, dependent=waiting, condition="succeeded")
    schedule_cluster(cluster_id=cluster.pk)  # starts what fits, explains the rest
    return cluster


@pytest.mark.parametrize("seed", range(25))
def test_pages_and_positions_are_the_planners_queue(seed):
    rng = random.Random(seed)
    cluster = _random_cluster(rng)
    cluster.refresh_from_db()
    # The planner over the settled state: it starts nothing, and its queue is the queue.
    rows = lock_schedulable(cluster.pk)
    plan = planner.plan(snapshot_of(cluster, rows, now=timezone.now()))
    assert not plan.changed

    full = cluster_queue(cluster=cluster, limit=QUEUE_PAGE_MAX)

    queued = [i for i in full.items if i.deployment.status == Status.QUEUED]
    assert [(i.deployment.pk, i.position, i.reason, i.reserved) for i in queued] == [
        (e.deployment_id, e.position, e.reason, e.reserved) for e in plan.queue
    ]
    pending = Deployment.objects.filter(cluster=cluster, status=Status.PENDING)
    assert full.total == len(plan.queue) + pending.count() == len(full.items)
    assert [i.position for i in full.items] == list(range(1, full.total + 1))
    size = rng.randint(1, 7)
    pages = [
        cluster_queue(cluster=cluster, offset=begin, limit=size)
        for begin in range(0, full.total + size, size)
    ]
    assert [i.deployment.pk for p in pages for i in p.items] == [
        i.deployment.pk for i in full.items
    ]
    assert {p.total for p in pages} == {full.total}
    for item in full.items:
        position = queue_position(deployment=Deployment.objects.get(pk=item.deployment.pk))
        assert (position.position, position.reason, position.reserved) == (
            item.position,
            item.reason,
            item.reserved,
        )


def test_no_position_for_what_does_not_wait():
    cluster = ClusterFactory(capacity_cpu=2000)
    deployment = DeploymentFactory(cluster=cluster)
    schedule_cluster(cluster_id=cluster.pk)
    deployment.refresh_from_db()
    assert deployment.status == Status.RUNNING
    assert queue_position(deployment=deployment) is None


# --- the endpoint ------------------------------------------------------------------------


def _queue(api, cluster, query: str = ""):
    return api.get(f"/api/v1/clusters/{cluster.pk}/queue{query}")


def test_the_endpoint_pages_with_offset_limit_and_a_total(viewer, organization, as_user):
    cluster = ClusterFactory(organization=organization, capacity_cpu=1000)
    now = timezone.now()
    Deployment.objects.bulk_create(
        DeploymentFactory.build(
            cluster=cluster, cpu=2000, created_by=viewer, queued_at=now + timedelta(0, i)
        )
        for i in range(503)
    )
    api = as_user(viewer)

    first = _queue(api, cluster)
    assert first.status_code == 200
    assert first["X-Total-Count"] == "503"
    assert len(first.json()) == 500  # the default limit
    assert [e["position"] for e in first.json()[:2]] == [1, 2]
    last = _queue(api, cluster, "?offset=500&limit=10")
    assert [e["position"] for e in last.json()] == [501, 502, 503]
    assert last["X-Total-Count"] == "503"
    ids = [e["deployment"]["id"] for e in first.json() + last.json()]
    assert ids == list(
        Deployment.objects.filter(cluster=cluster)
        .order_by("queued_at")
        .values_list("pk", flat=True)
    )
    beyond = _queue(api, cluster, "?offset=9999")
    assert beyond.status_code == 200 and beyond.json() == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=5001", "limit"),
        ("?limit=ten", "limit"),
        ("?offset=-1", "offset"),
        ("?offset=1e3", "offset"),
        ("?offset=99999999999999999999999", "offset"),
    ],
)
def test_bad_paging_is_400_naming_the_field(viewer, organization, as_user, query, field):
    cluster = ClusterFactory(organization=organization)
    answer = _queue(as_user(viewer), cluster, query)
    assert answer.status_code == 400
    assert field in answer.json()


def test_limit_up_to_5000_is_allowed(viewer, organization, as_user):
    cluster = ClusterFactory(organization=organization)
    answer = _queue(as_user(viewer), cluster, "?limit=5000")
    assert answer.status_code == 200 and answer["X-Total-Count"] == "0"
