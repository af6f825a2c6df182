"""The Clusters table of API.md: create, list, retrieve, change, delete and the queue."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, Status
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory
from orgs.models import Role
from orgs.tests.factories import MembershipFactory, OrganizationFactory
from scheduler.services import schedule_cluster

pytestmark = pytest.mark.django_db

CLUSTERS = "/api/v1/clusters"
DEPLOYMENTS = "/api/v1/deployments"
DETAIL_FIELDS = {
    "id",
    "organization",
    "name",
    "capacity",
    "allocated",
    "available",
    "policy",
    "starvation_after_seconds",
    "created_at",
    "updated_at",
}
ZERO = {"cpu": 0, "ram_mb": 0, "gpu": 0}


def _cluster(cluster: Cluster) -> str:
    return f"{CLUSTERS}/{cluster.pk}"


def _body(organization, **overrides) -> dict:
    return {
        "organization": organization.pk,
        "name": "gpu-east",
        "capacity": {"cpu": 64, "ram_mb": 262144, "gpu": 8},
        **overrides,
    }


def _assert_timestamp(value: str) -> None:
    assert datetime.fromisoformat(value).tzinfo is not None, value


def _says(reason: str, *patterns: str) -> None:
    """The reason names these numbers and words; its exact wording may still evolve."""
    missing = [p for p in patterns if not re.search(p, reason)]
    assert not missing, (reason, missing)


def _submit(api, cluster: Cluster, *, cpu, priority=0, preemptible=True, **extra) -> dict:
    """Create a deployment through the API, as a client would."""
    body = {
        "cluster": cluster.pk,
        "name": f"job-p{priority}",
        "image": "registry.example.com/team/job:1",
        "resources": {"cpu": cpu, "ram_mb": 128, "gpu": 0},
        "priority": priority,
        "preemptible": preemptible,
        **extra,
    }
    response = api.post(DEPLOYMENTS, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


# --- create -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin_user"])
def test_create_answers_every_documented_field(request, role, organization, as_user):
    api = as_user(request.getfixturevalue(role))
    body = _body(
        organization,
        capacity={"cpu": 0.25, "ram_mb": 1024, "gpu": 1},
        policy="pack",
        starvation_after_seconds=600,
    )

    response = api.post(CLUSTERS, body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data.keys() >= DETAIL_FIELDS
    assert isinstance(data["id"], int)
    assert data["organization"] == organization.pk
    assert data["name"] == "gpu-east"
    assert data["capacity"] == {"cpu": 0.25, "ram_mb": 1024, "gpu": 1}
    assert data["allocated"] == ZERO
    assert data["available"] == {"cpu": 0.25, "ram_mb": 1024, "gpu": 1}
    assert data["policy"] == "pack"
    assert data["starvation_after_seconds"] == 600
    _assert_timestamp(data["created_at"])
    _assert_timestamp(data["updated_at"])
    cluster = Cluster.objects.get(pk=data["id"])
    assert (cluster.capacity_cpu, cluster.capacity_ram_mb, cluster.capacity_gpu) == (250, 1024, 1)
    assert cluster.organization_id == organization.pk


def test_create_defaults_to_pack_without_starvation_protection(owner, organization, as_user):
    response = as_user(owner).post(CLUSTERS, _body(organization), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["policy"] == "pack"
    assert response.json()["starvation_after_seconds"] is None


@pytest.mark.parametrize(
    ("cpu", "millicores"),
    [(0.001, 1), (0.1, 100), (0.25, 250), (1.5, 1500), (12.345, 12345), ("7.125", 7125), (0, 0)],
)
def test_cpu_is_stored_and_answered_exactly(owner, organization, as_user, cpu, millicores):
    api = as_user(owner)
    body = _body(organization, capacity={"cpu": cpu, "ram_mb": 1, "gpu": 0})

    response = api.post(CLUSTERS, body, format="json")

    assert response.status_code == 201, response.json()
    assert Cluster.objects.get(pk=response.json()["id"]).capacity_cpu == millicores
    answered = response.json()["capacity"]["cpu"]
    assert Decimal(str(answered)) == Decimal(str(cpu))
    retrieved = api.get(f"{CLUSTERS}/{response.json()['id']}").json()
    assert retrieved["capacity"]["cpu"] == answered


@pytest.mark.parametrize(
    ("capacity", "field"),
    [
        ({"cpu": 0.0001, "ram_mb": 1, "gpu": 0}, "cpu"),
        ({"cpu": "1.2345", "ram_mb": 1, "gpu": 0}, "cpu"),
        ({"cpu": -1, "ram_mb": 1, "gpu": 0}, "cpu"),
        ({"cpu": 1, "ram_mb": -1, "gpu": 0}, "ram_mb"),
        ({"cpu": 1, "ram_mb": 1, "gpu": -1}, "gpu"),
        ({"cpu": 10**30, "ram_mb": 1, "gpu": 0}, "cpu"),
        ({"cpu": 1, "ram_mb": 10**30, "gpu": 0}, "ram_mb"),
        ({"cpu": 1, "ram_mb": 1, "gpu": 10**30}, "gpu"),
        ({"cpu": 1, "ram_mb": 1.5, "gpu": 0}, "ram_mb"),
        ({"ram_mb": 1, "gpu": 0}, "cpu"),
    ],
)
def test_create_refuses_a_bad_capacity_naming_the_dimension(
    owner, organization, as_user, capacity, field
):
    response = as_user(owner).post(CLUSTERS, _body(organization, capacity=capacity), format="json")

    assert response.status_code == 400
    assert field in response.json()["capacity"]
    assert not Cluster.objects.exists()


def test_names_are_unique_within_an_organization(owner, organization, as_user):
    api = as_user(owner)
    ClusterFactory(organization=organization, name="gpu-east")
    ClusterFactory(name="shared-name")  # another organization's

    duplicate = api.post(CLUSTERS, _body(organization, name="gpu-east"), format="json")
    elsewhere = api.post(CLUSTERS, _body(organization, name="shared-name"), format="json")

    assert duplicate.status_code == 400
    assert "name" in duplicate.json()
    assert elsewhere.status_code == 201, elsewhere.json()
    assert Cluster.objects.filter(organization=organization).count() == 2


def test_a_foreign_organization_is_400_like_a_missing_one(owner, organization, as_user):
    api = as_user(owner)
    foreign = OrganizationFactory()
    missing_id = foreign.pk + 1000

    to_foreign = api.post(
        CLUSTERS, {**_body(organization), "organization": foreign.pk}, format="json"
    )
    to_missing = api.post(
        CLUSTERS, {**_body(organization), "organization": missing_id}, format="json"
    )

    assert to_foreign.status_code == to_missing.status_code == 400
    # The same message, but for the id: nothing tells that the foreign one exists.
    foreign_message = to_foreign.json()["organization"][0].replace(str(foreign.pk), "ID")
    missing_message = to_missing.json()["organization"][0].replace(str(missing_id), "ID")
    assert foreign_message == missing_message
    assert not Cluster.objects.exists()


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_developers_and_viewers_may_not_create(request, role, organization, as_user):
    api = as_user(request.getfixturevalue(role))

    response = api.post(CLUSTERS, _body(organization), format="json")

    assert response.status_code == 403
    assert not Cluster.objects.exists()


def test_anonymous_callers_get_401(anon, organization):
    assert anon.post(CLUSTERS, _body(organization), format="json").status_code == 401
    assert anon.get(CLUSTERS).status_code == 401


# --- list and retrieve ------------------------------------------------------------------


def test_list_shows_only_the_callers_organizations(developer, organization, as_user):
    mine = ClusterFactory(organization=organization)
    other_org = OrganizationFactory()
    ClusterFactory(organization=other_org)  # a stranger's
    api = as_user(developer)

    response = api.get(CLUSTERS)

    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"count", "next", "previous", "results"}
    assert data["count"] == 1
    assert [c["id"] for c in data["results"]] == [mine.pk]
    assert data["results"][0].keys() >= DETAIL_FIELDS


def test_list_filters_by_organization(owner, organization, as_user):
    second = OrganizationFactory()
    MembershipFactory(organization=second, user=owner, role=Role.OWNER)
    first_cluster = ClusterFactory(organization=organization)
    second_cluster = ClusterFactory(organization=second)
    foreign = ClusterFactory()
    api = as_user(owner)

    everything = api.get(CLUSTERS).json()
    only_first = api.get(CLUSTERS, {"organization": organization.pk}).json()
    only_second = api.get(f"{CLUSTERS}/", {"organization": second.pk}).json()
    stranger = api.get(CLUSTERS, {"organization": foreign.organization_id})

    assert [c["id"] for c in everything["results"]] == [first_cluster.pk, second_cluster.pk]
    assert [c["id"] for c in only_first["results"]] == [first_cluster.pk]
    assert [c["id"] for c in only_second["results"]] == [second_cluster.pk]
    assert stranger.status_code == 200 and stranger.json()["count"] == 0


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5", str(10**30)])
def test_a_bad_organization_filter_is_400_naming_it(owner, organization, as_user, value):
    ClusterFactory(organization=organization)

    response = as_user(owner).get(CLUSTERS, {"organization": value})

    assert response.status_code == 400
    assert "organization" in response.json()


def test_list_is_paginated_with_at_most_500_per_page(owner, organization, as_user):
    Cluster.objects.bulk_create(ClusterFactory.build_batch(501, organization=organization))
    api = as_user(owner)

    two = api.get(CLUSTERS, {"page_size": 2, "page": 2}).json()
    capped = api.get(CLUSTERS, {"page_size": 10_000}).json()

    assert two["count"] == 501
    assert len(two["results"]) == 2
    assert "page=3" in two["next"] and "page_size=2" in two["next"]
    assert two["previous"] is not None
    assert len(capped["results"]) == 500
    assert capped["next"] is not None and capped["previous"] is None


def test_retrieve_shows_allocated_and_available(viewer, organization, as_user):
    cluster = ClusterFactory(organization=organization, capacity_cpu=4000)
    RunningDeploymentFactory(cluster=cluster, cpu=1250, ram_mb=2048, gpu=1)

    response = as_user(viewer).get(_cluster(cluster))

    assert response.status_code == 200
    data = response.json()
    assert data.keys() >= DETAIL_FIELDS
    assert data["capacity"] == {"cpu": 4, "ram_mb": 32768, "gpu": 4}
    assert data["allocated"] == {"cpu": 1.25, "ram_mb": 2048, "gpu": 1}
    assert data["available"] == {"cpu": 2.75, "ram_mb": 30720, "gpu": 3}


def test_outsiders_get_404_for_everything_about_a_cluster(outsider, organization, as_user):
    cluster = ClusterFactory(organization=organization)
    api = as_user(outsider)

    assert api.get(_cluster(cluster)).status_code == 404
    assert api.get(f"{_cluster(cluster)}/queue").status_code == 404
    patch = api.patch(_cluster(cluster), {"name": "mine-now"}, format="json")
    assert patch.status_code == 404
    assert api.delete(_cluster(cluster)).status_code == 404
    assert Cluster.objects.get(pk=cluster.pk).name == cluster.name


@pytest.mark.parametrize("path", ["999999", "999999999999999999", "9" * 40, "abc"])
def test_unknown_cluster_ids_are_404(owner, as_user, path):
    api = as_user(owner)

    assert api.get(f"{CLUSTERS}/{path}").status_code == 404
    assert api.get(f"{CLUSTERS}/{path}/queue").status_code == 404


# --- change -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_growing_capacity_starts_queued_work_in_the_same_answer(owner, organization, as_user):
    api = as_user(owner)
    cluster = ClusterFactory(organization=organization, capacity_cpu=1000)
    first = _submit(api, cluster, cpu=1)
    second = _submit(api, cluster, cpu=1)
    assert (first["status"], second["status"]) == ("running", "queued")

    response = api.patch(
        _cluster(cluster), {"capacity": {"cpu": 2, "ram_mb": 32768, "gpu": 4}}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["capacity"]["cpu"] == 2
    assert response.json()["allocated"] == {"cpu": 2, "ram_mb": 256, "gpu": 0}
    assert response.json()["available"]["cpu"] == 0
    assert api.get(f"{DEPLOYMENTS}/{second['id']}").json()["status"] == "running"
    started = api.get(f"{DEPLOYMENTS}/{second['id']}/events").json()["results"][-1]
    assert (started["from_status"], started["to_status"]) == ("queued", "running")
    assert "capacity" in started["reason"], started


def test_shrinking_below_what_is_allocated_is_409(owner, organization, as_user):
    cluster = ClusterFactory(organization=organization, capacity_cpu=4000, capacity_gpu=4)
    RunningDeploymentFactory(cluster=cluster, cpu=3000, ram_mb=1024, gpu=2)
    api = as_user(owner)

    too_small = api.patch(
        _cluster(cluster), {"capacity": {"cpu": 2.999, "ram_mb": 32768, "gpu": 4}}, format="json"
    )
    too_few_gpus = api.patch(
        _cluster(cluster), {"capacity": {"cpu": 4, "ram_mb": 32768, "gpu": 1}}, format="json"
    )
    exactly = api.patch(
        _cluster(cluster), {"capacity": {"cpu": 3, "ram_mb": 1024, "gpu": 2}}, format="json"
    )

    # The service's refusal, not the database's (whose 409 says `constraint_violation`):
    # with the service's check gone, the CHECK constraints would still answer 409.
    assert too_small.status_code == 409
    assert too_small.json()["code"] == "capacity_below_allocated", too_small.json()
    assert "allocated: 3 CPU, 1024 MiB RAM, 2 GPU" in too_small.json()["detail"]
    assert too_few_gpus.status_code == 409
    assert too_few_gpus.json()["code"] == "capacity_below_allocated", too_few_gpus.json()
    assert exactly.status_code == 200, exactly.json()
    assert exactly.json()["available"] == ZERO
    cluster.refresh_from_db()
    assert (cluster.capacity_cpu, cluster.capacity_ram_mb, cluster.capacity_gpu) == (3000, 1024, 2)


def test_a_partial_capacity_is_400_not_500(owner, organization, as_user):
    cluster = ClusterFactory(organization=organization)

    response = as_user(owner).patch(_cluster(cluster), {"capacity": {"cpu": 4}}, format="json")

    assert response.status_code == 400
    assert {"ram_mb", "gpu"} <= response.json()["capacity"].keys()
    cluster.refresh_from_db()
    assert cluster.capacity_cpu == 8000


def test_policy_starvation_and_name_are_settable(admin_user, organization, as_user):
    cluster = ClusterFactory(organization=organization)
    api = as_user(admin_user)

    changed = api.patch(
        _cluster(cluster),
        {"policy": "pack", "starvation_after_seconds": 3600, "name": "renamed"},
        format="json",
    )
    cleared = api.patch(f"{_cluster(cluster)}/", {"starvation_after_seconds": None}, format="json")

    assert changed.status_code == 200, changed.json()
    assert (changed.json()["policy"], changed.json()["starvation_after_seconds"]) == ("pack", 3600)
    assert changed.json()["name"] == "renamed"
    assert cleared.status_code == 200, cleared.json()
    assert cleared.json()["starvation_after_seconds"] is None
    assert cleared.json()["policy"] == "pack"  # untouched by a PATCH that does not name it
    cluster.refresh_from_db()
    assert (cluster.policy, cluster.starvation_after_seconds, cluster.name) == (
        "pack",
        None,
        "renamed",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"policy": "lifo"}, "policy"),
        ({"policy": None}, "policy"),
        ({"starvation_after_seconds": 0}, "starvation_after_seconds"),
        ({"starvation_after_seconds": -5}, "starvation_after_seconds"),
        ({"starvation_after_seconds": 10**30}, "starvation_after_seconds"),
        ({"starvation_after_seconds": "soon"}, "starvation_after_seconds"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"capacity": None}, "capacity"),
        ({"capacity": "big"}, "capacity"),
    ],
)
def test_a_bad_change_is_400_naming_the_field(owner, organization, as_user, body, field):
    cluster = ClusterFactory(organization=organization)

    response = as_user(owner).patch(_cluster(cluster), body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_renaming_onto_a_sibling_is_400(owner, organization, as_user):
    cluster = ClusterFactory(organization=organization, name="a")
    ClusterFactory(organization=organization, name="b")
    api = as_user(owner)

    clash = api.patch(_cluster(cluster), {"name": "b"}, format="json")
    same = api.patch(_cluster(cluster), {"name": "a"}, format="json")

    assert clash.status_code == 400 and "name" in clash.json()
    assert same.status_code == 200


def test_a_cluster_cannot_move_to_another_organization(owner, organization, as_user):
    cluster = ClusterFactory(organization=organization)
    elsewhere = OrganizationFactory()

    response = as_user(owner).patch(
        _cluster(cluster), {"organization": elsewhere.pk}, format="json"
    )

    assert response.status_code == 200
    cluster.refresh_from_db()
    assert cluster.organization_id == organization.pk


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_developers_and_viewers_may_not_change_or_delete(request, role, organization, as_user):
    cluster = ClusterFactory(organization=organization)
    api = as_user(request.getfixturevalue(role))

    patch = api.patch(_cluster(cluster), {"name": "mine"}, format="json")
    delete = api.delete(_cluster(cluster))

    assert (patch.status_code, delete.status_code) == (403, 403)
    assert Cluster.objects.get(pk=cluster.pk).name == cluster.name


# --- delete -----------------------------------------------------------------------------


def test_delete_an_idle_cluster_with_its_history(owner, organization, as_user):
    cluster = ClusterFactory(organization=organization)
    for finished in (Status.COMPLETED, Status.FAILED, Status.CANCELLED):
        DeploymentFactory(cluster=cluster, status=finished, finished_at=timezone.now())

    response = as_user(owner).delete(_cluster(cluster))

    assert response.status_code == 204
    assert not Cluster.objects.filter(pk=cluster.pk).exists()
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("status", [Status.RUNNING, Status.QUEUED, Status.PENDING])
def test_delete_with_running_or_waiting_work_is_409(admin_user, organization, as_user, status):
    cluster = ClusterFactory(organization=organization)
    if status == Status.RUNNING:
        RunningDeploymentFactory(cluster=cluster)
    else:
        DeploymentFactory(cluster=cluster, status=status)

    response = as_user(admin_user).delete(_cluster(cluster))

    assert response.status_code == 409
    assert "detail" in response.json()
    assert response.json()["code"] == "cluster_busy"
    assert Cluster.objects.filter(pk=cluster.pk).exists()
    assert Deployment.objects.filter(cluster=cluster).count() == 1


# --- the queue --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_queue_lists_waiting_work_in_the_schedulers_order(owner, viewer, organization, as_user):
    api = as_user(owner)
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000, capacity_gpu=0)
    pinned = _submit(api, cluster, cpu=2, priority=10, preemptible=False)
    low = _submit(api, cluster, cpu=1, priority=1)
    mid_first = _submit(api, cluster, cpu=1, priority=3)
    mid_second = _submit(api, cluster, cpu=1, priority=3)
    after = _submit(api, cluster, cpu=1, priority=100, depends_on=[pinned["id"]])
    assert pinned["status"] == "running" and after["status"] == "pending"

    response = as_user(viewer).get(f"{_cluster(cluster)}/queue")

    assert response.status_code == 200
    queue = response.json()
    assert [e["deployment"]["id"] for e in queue] == [
        mid_first["id"],
        mid_second["id"],
        low["id"],
        after["id"],
    ]
    assert [e["position"] for e in queue] == [1, 2, 3, 4]
    first = queue[0]
    assert first["deployment"]["status"] == "queued"
    assert first["deployment"]["priority"] == 3
    # "needs 1 CPU, 0 free; ... holds 2 CPU of 2 CPU": the numbers a person acts on.
    _says(first["reason"], r"needs 1 CPU", r"\b0 (CPU )?free", r"2 CPU")
    assert queue[3]["deployment"]["status"] == "pending"
    _says(queue[3]["reason"], rf"deployment {pinned['id']}\b", "succeed")
    # While it waits, the reason is also the deployment's status_reason.
    detail = api.get(f"{DEPLOYMENTS}/{mid_first['id']}").json()
    assert detail["status_reason"] == first["reason"]


def test_queue_reason_counts_what_preemption_could_free(viewer, organization, as_user):
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000)
    RunningDeploymentFactory(cluster=cluster, cpu=1000, priority=10, preemptible=False)
    RunningDeploymentFactory(cluster=cluster, cpu=1000, priority=0)
    waiting = DeploymentFactory(cluster=cluster, cpu=2000, priority=5)
    schedule_cluster(cluster_id=cluster.pk)  # the pass explains the queue

    [entry] = as_user(viewer).get(f"{_cluster(cluster)}/queue").json()

    assert entry["deployment"]["id"] == waiting.pk
    assert entry["position"] == 1
    # "needs 2 CPU, 0 free; 1 more could be freed by preempting ..., still 1 short"
    _says(entry["reason"], r"needs 2 CPU", r"\b0 (CPU )?free", r"\b1 (CPU )?more", "preempt")
    _says(entry["reason"], r"\b1 (CPU )?short")


def test_queue_reason_says_when_a_request_outgrew_a_shrunk_cluster(owner, organization, as_user):
    cluster = ClusterFactory(organization=organization, capacity_cpu=4000, capacity_gpu=2)
    DeploymentFactory(cluster=cluster, cpu=3000, gpu=2)
    api = as_user(owner)
    shrink = api.patch(
        _cluster(cluster), {"capacity": {"cpu": 2, "ram_mb": 32768, "gpu": 1}}, format="json"
    )
    assert shrink.status_code == 200, shrink.json()
    schedule_cluster(cluster_id=cluster.pk)  # what the change triggers on commit

    [entry] = api.get(f"{_cluster(cluster)}/queue").json()

    _says(entry["reason"], "capacity", r"\b3 CPU", r"\b2 CPU", r"\b2 GPU", r"\b1 GPU")


def test_queue_shows_a_starvation_reservation(viewer, organization, as_user):
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000)
    cluster.starvation_after_seconds = 60
    cluster.save()
    RunningDeploymentFactory(cluster=cluster, cpu=1000)
    starving = DeploymentFactory(
        cluster=cluster, cpu=2000, queued_at=timezone.now() - timedelta(minutes=5)
    )
    small = DeploymentFactory(cluster=cluster, cpu=1000)
    schedule_cluster(cluster_id=cluster.pk)

    queue = as_user(viewer).get(f"{_cluster(cluster)}/queue").json()

    assert [e["deployment"]["id"] for e in queue] == [starving.pk, small.pk]
    assert queue[0]["reserved"] and not queue[1]["reserved"]
    _says(queue[0]["reason"], "reserved", r"\b60 s")
    _says(queue[1]["reason"], "reserved", rf"deployment {starving.pk}\b")


def test_an_empty_queue_is_an_empty_list(viewer, organization, as_user):
    cluster = ClusterFactory(organization=organization)
    RunningDeploymentFactory(cluster=cluster)

    response = as_user(viewer).get(f"{_cluster(cluster)}/queue")

    assert response.status_code == 200
    assert response.json() == []
