"""The Deployments table of API.md: create, list, retrieve, complete/fail/cancel, events
and dependents, with every role, an outsider and an anonymous caller."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone

from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, Status
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory
from orgs.models import Role
from orgs.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

DEPLOYMENTS = "/api/v1/deployments"
DETAIL_FIELDS = {
    "id",
    "cluster",
    "organization",
    "name",
    "image",
    "resources",
    "priority",
    "preemptible",
    "depends_on",
    "status",
    "status_reason",
    "preemption_count",
    "created_by",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "updated_at",
}
EVENT_FIELDS = {"at", "from_status", "to_status", "reason", "actor"}


def _url(deployment, action: str = "") -> str:
    pk = deployment if isinstance(deployment, int) else deployment.pk
    return f"{DEPLOYMENTS}/{pk}" + (f"/{action}" if action else "")


def _body(cluster, **overrides) -> dict:
    return {
        "cluster": cluster.pk,
        "name": "train-resnet",
        "image": "registry.example.com:5000/team/trainer:1.4",
        "resources": {"cpu": 1, "ram_mb": 1024, "gpu": 0},
        **overrides,
    }


def _create(api, cluster, **overrides) -> dict:
    response = api.post(DEPLOYMENTS, _body(cluster, **overrides), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def _assert_timestamp(value: str) -> None:
    assert datetime.fromisoformat(value).tzinfo is not None, value


def _finished(cluster, status: Status) -> Deployment:
    return DeploymentFactory(cluster=cluster, status=status, finished_at=timezone.now())


def _events(api, deployment) -> list[dict]:
    response = api.get(_url(deployment, "events"))
    assert response.status_code == 200
    return response.json()["results"]


@pytest.fixture
def cluster(organization):
    """8 CPU, 32 GiB, 4 GPUs in the members' organization."""
    return ClusterFactory(organization=organization)


# --- create -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_create_answers_every_field_running_when_it_fits(owner, organization, as_user):
    api = as_user(owner)
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000)
    body = _body(
        cluster,
        resources={"cpu": 1.25, "ram_mb": 512, "gpu": 1},
        priority=7,
        preemptible=False,
    )

    response = api.post(DEPLOYMENTS, body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data.keys() >= DETAIL_FIELDS
    assert data["status"] == "running"  # the pass ran before the answer
    assert (data["cluster"], data["organization"]) == (cluster.pk, organization.pk)
    assert data["name"] == "train-resnet"
    assert data["image"] == "registry.example.com:5000/team/trainer:1.4"
    assert data["resources"] == {"cpu": 1.25, "ram_mb": 512, "gpu": 1}
    assert (data["priority"], data["preemptible"]) == (7, False)
    assert data["depends_on"] == []
    assert data["preemption_count"] == 0
    assert data["created_by"] == owner.pk
    for stamp in ("created_at", "queued_at", "started_at", "updated_at"):
        _assert_timestamp(data[stamp])
    assert data["finished_at"] is None
    row = Deployment.objects.get(pk=data["id"])
    assert (row.cpu, row.ram_mb, row.gpu, row.status) == (1250, 512, 1, Status.RUNNING)
    assert api.get(_url(data["id"])).json() == data


@pytest.mark.django_db(transaction=True)
def test_create_answers_queued_with_a_reason_when_it_does_not_fit(owner, organization, as_user):
    api = as_user(owner)
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000)
    first = _create(api, cluster, resources={"cpu": 1.5, "ram_mb": 10, "gpu": 0})

    second = _create(api, cluster, resources={"cpu": 1, "ram_mb": 10, "gpu": 0})

    assert first["status"] == "running"
    assert second["status"] == "queued"
    assert second["started_at"] is None
    assert "needs 1 CPU" in second["status_reason"]
    assert "0.5 CPU free" in second["status_reason"]


@pytest.mark.django_db(transaction=True)
def test_create_answer_equals_a_read_of_the_row_with_dependencies(owner, cluster, as_user):
    """The create answers from the instance it created (no re-read): it must say exactly
    what a GET says, dependency links and the pending reason included."""
    api = as_user(owner)
    first = _create(api, cluster, resources={"cpu": 8, "ram_mb": 10, "gpu": 0})
    second = _create(api, cluster, resources={"cpu": 8, "ram_mb": 10, "gpu": 0})
    finished = _finished(cluster, Status.FAILED)
    depends_on = [second["id"], {"deployment": first["id"], "condition": "finished"}]
    depends_on.append({"deployment": finished.pk, "condition": "failed"})

    data = _create(api, cluster, depends_on=depends_on)

    assert data["status"] == "pending"
    assert [d["deployment"] for d in data["depends_on"]] == sorted(
        [first["id"], second["id"], finished.pk]
    )
    assert str(second["id"]) in data["status_reason"]
    assert api.get(_url(data["id"])).json() == data


@pytest.mark.rq
@pytest.mark.django_db(transaction=True)
def test_create_with_workers_answers_the_committed_row(owner, cluster, as_user):
    """With Redis, a deployment that certainly starts alone is placed in the request
    (scheduler.incremental); one that needs a pass waits for a worker. Either way the
    answer is the row as committed."""
    api = as_user(owner)
    RunningDeploymentFactory(cluster=cluster, cpu=6000, priority=0)  # preemptible

    placed = _create(api, cluster, resources={"cpu": 2, "ram_mb": 10, "gpu": 0})
    # It needs 4 CPU, 0 free: only a pass that preempts can start it.
    needs_a_pass = _create(api, cluster, resources={"cpu": 4, "ram_mb": 10, "gpu": 0}, priority=3)

    assert (placed["status"], bool(placed["started_at"])) == ("running", True)
    assert (needs_a_pass["status"], needs_a_pass["started_at"]) == ("queued", None)
    for data in (placed, needs_a_pass):
        assert api.get(_url(data["id"])).json() == data


def test_create_defaults(developer, cluster, as_user):
    data = _create(as_user(developer), cluster)

    assert (data["priority"], data["preemptible"], data["depends_on"]) == (0, True, [])
    assert data["created_by"] == developer.pk


def test_viewers_may_not_create(viewer, cluster, as_user):
    response = as_user(viewer).post(DEPLOYMENTS, _body(cluster), format="json")

    assert response.status_code == 403
    assert not Deployment.objects.exists()


def test_outsiders_cannot_submit_to_a_cluster_they_cannot_see(outsider, cluster, as_user):
    api = as_user(outsider)
    missing = cluster.pk + 1000

    foreign = api.post(DEPLOYMENTS, _body(cluster), format="json")
    unknown = api.post(DEPLOYMENTS, {**_body(cluster), "cluster": missing}, format="json")

    assert foreign.status_code == unknown.status_code == 400
    assert foreign.json()["cluster"][0].replace(str(cluster.pk), "ID") == unknown.json()["cluster"][
        0
    ].replace(str(missing), "ID")
    assert not Deployment.objects.exists()


def test_anonymous_callers_get_401(anon, cluster):
    deployment = DeploymentFactory(cluster=cluster)

    assert anon.post(DEPLOYMENTS, _body(cluster), format="json").status_code == 401
    assert anon.get(DEPLOYMENTS).status_code == 401
    assert anon.get(_url(deployment)).status_code == 401
    assert anon.post(_url(deployment, "cancel")).status_code == 401


@pytest.mark.parametrize(
    "resources",
    [
        {"cpu": 8.001, "ram_mb": 1, "gpu": 0},
        {"cpu": 1, "ram_mb": 32769, "gpu": 0},
        {"cpu": 1, "ram_mb": 1, "gpu": 5},
    ],
    ids=["cpu", "ram_mb", "gpu"],
)
def test_a_request_above_capacity_in_any_dimension_is_400(owner, cluster, as_user, resources):
    response = as_user(owner).post(DEPLOYMENTS, _body(cluster, resources=resources), format="json")

    assert response.status_code == 400
    assert "capacity" in response.json()["resources"][0]
    assert not Deployment.objects.exists()


def test_a_request_of_exactly_the_capacity_is_accepted(owner, cluster, as_user):
    data = _create(as_user(owner), cluster, resources={"cpu": 8, "ram_mb": 32768, "gpu": 4})

    assert data["resources"] == {"cpu": 8, "ram_mb": 32768, "gpu": 4}


@pytest.mark.parametrize("priority", [0, 1, 1_000_000])
def test_priority_within_bounds_is_accepted(owner, cluster, as_user, priority):
    assert _create(as_user(owner), cluster, priority=priority)["priority"] == priority


@pytest.mark.parametrize("priority", [-1, 1_000_001, 10**30, 1.5, "high", None, [], {}])
def test_priority_out_of_bounds_is_400(owner, cluster, as_user, priority):
    response = as_user(owner).post(DEPLOYMENTS, _body(cluster, priority=priority), format="json")

    assert response.status_code == 400
    assert "priority" in response.json()
    assert not Deployment.objects.exists()


# --- dependencies at creation -----------------------------------------------------------


def test_unmet_dependencies_make_it_pending_in_object_form(owner, cluster, as_user):
    running = RunningDeploymentFactory(cluster=cluster)
    other_cluster = ClusterFactory(organization=cluster.organization)
    queued = DeploymentFactory(cluster=other_cluster)
    api = as_user(owner)

    data = _create(
        api,
        cluster,
        depends_on=[running.pk, {"deployment": queued.pk, "condition": "finished"}],
    )

    assert data["status"] == "pending"
    assert data["queued_at"] is None
    links = [(d["deployment"], d["condition"], d["status"]) for d in data["depends_on"]]
    assert links == [(running.pk, "succeeded", "running"), (queued.pk, "finished", "queued")]
    assert f"deployment {running.pk}" in data["status_reason"]
    assert f"deployment {queued.pk}" in data["status_reason"]
    assert api.get(_url(data["id"])).json()["depends_on"] == data["depends_on"]


@pytest.mark.parametrize(
    ("status", "condition"),
    [
        (Status.COMPLETED, "succeeded"),
        (Status.COMPLETED, "finished"),
        (Status.FAILED, "failed"),
        (Status.CANCELLED, "failed"),
        (Status.CANCELLED, "finished"),
    ],
)
def test_met_dependencies_make_it_queued(owner, cluster, as_user, status, condition):
    done = _finished(cluster, status)

    data = _create(
        as_user(owner), cluster, depends_on=[{"deployment": done.pk, "condition": condition}]
    )

    assert data["status"] == "queued"
    assert data["depends_on"][0]["deployment"] == done.pk
    assert data["depends_on"][0]["condition"] == condition


@pytest.mark.parametrize(
    ("status", "condition"),
    [
        (Status.FAILED, "succeeded"),
        (Status.CANCELLED, "succeeded"),
        (Status.COMPLETED, "failed"),
    ],
)
def test_a_condition_that_can_never_be_met_is_400(owner, cluster, as_user, status, condition):
    done = _finished(cluster, status)

    response = as_user(owner).post(
        DEPLOYMENTS,
        _body(cluster, depends_on=[{"deployment": done.pk, "condition": condition}]),
        format="json",
    )

    assert response.status_code == 400
    assert str(done.pk) in response.json()["depends_on"][0]
    assert Deployment.objects.count() == 1


def test_a_failed_dependency_given_as_an_id_is_400(owner, cluster, as_user):
    failed = _finished(cluster, Status.FAILED)

    response = as_user(owner).post(
        DEPLOYMENTS, _body(cluster, depends_on=[failed.pk]), format="json"
    )

    assert response.status_code == 400
    assert "depends_on" in response.json()


def test_an_unknown_or_foreign_dependency_is_400_alike(owner, cluster, as_user):
    foreign = DeploymentFactory()  # another organization's
    missing = foreign.pk + 1000
    api = as_user(owner)

    to_foreign = api.post(DEPLOYMENTS, _body(cluster, depends_on=[foreign.pk]), format="json")
    to_missing = api.post(DEPLOYMENTS, _body(cluster, depends_on=[missing]), format="json")

    assert to_foreign.status_code == to_missing.status_code == 400
    foreign_message = to_foreign.json()["depends_on"][0].replace(str(foreign.pk), "ID")
    assert foreign_message == to_missing.json()["depends_on"][0].replace(str(missing), "ID")
    assert Deployment.objects.count() == 1


@pytest.mark.parametrize(
    "depends_on",
    [
        "1",
        {"deployment": 1},
        [True],
        [None],
        ["abc"],
        [1.5],
        [{"condition": "succeeded"}],
        [{"deployment": 1, "condition": "maybe"}],
        [{"deployment": 10**30}],
        [[1]],
    ],
)
def test_a_malformed_depends_on_is_400(owner, cluster, as_user, depends_on):
    response = as_user(owner).post(
        DEPLOYMENTS, _body(cluster, depends_on=depends_on), format="json"
    )

    assert response.status_code == 400
    assert "depends_on" in response.json()


def test_the_same_dependency_twice_is_400(owner, cluster, as_user):
    queued = DeploymentFactory(cluster=cluster)

    response = as_user(owner).post(
        DEPLOYMENTS,
        _body(cluster, depends_on=[queued.pk, {"deployment": queued.pk, "condition": "failed"}]),
        format="json",
    )

    assert response.status_code == 400
    assert "depends_on" in response.json()


# --- list and retrieve ------------------------------------------------------------------


def test_list_shows_only_the_callers_organizations(viewer, cluster, as_user):
    mine = DeploymentFactory(cluster=cluster)
    DeploymentFactory()  # a stranger's

    response = as_user(viewer).get(DEPLOYMENTS)

    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"count", "next", "previous", "results"}
    assert [d["id"] for d in data["results"]] == [mine.pk]
    assert data["results"][0].keys() >= DETAIL_FIELDS


def test_list_filters_by_cluster_status_and_organization(owner, organization, as_user):
    first = ClusterFactory(organization=organization)
    second = ClusterFactory(organization=organization)
    elsewhere = ClusterFactory()
    MembershipFactory(organization=elsewhere.organization, user=owner, role=Role.VIEWER)
    queued_first = DeploymentFactory(cluster=first)
    running_first = RunningDeploymentFactory(cluster=first)
    queued_second = DeploymentFactory(cluster=second)
    queued_elsewhere = DeploymentFactory(cluster=elsewhere)
    api = as_user(owner)

    def ids(**params) -> list[int]:
        response = api.get(DEPLOYMENTS, params)
        assert response.status_code == 200, response.json()
        return [d["id"] for d in response.json()["results"]]

    assert ids() == [queued_first.pk, running_first.pk, queued_second.pk, queued_elsewhere.pk]
    assert ids(cluster=first.pk) == [queued_first.pk, running_first.pk]
    assert ids(status="queued") == [queued_first.pk, queued_second.pk, queued_elsewhere.pk]
    assert ids(status="running") == [running_first.pk]
    assert ids(organization=organization.pk) == [
        queued_first.pk,
        running_first.pk,
        queued_second.pk,
    ]
    assert ids(organization=elsewhere.organization_id) == [queued_elsewhere.pk]
    assert ids(cluster=first.pk, status="queued") == [queued_first.pk]
    assert ids(cluster=second.pk, organization=elsewhere.organization_id) == []
    assert ids(status="completed") == []


def test_filters_on_what_the_caller_cannot_see_find_nothing(owner, cluster, as_user):
    DeploymentFactory(cluster=cluster)
    foreign = DeploymentFactory()
    api = as_user(owner)

    by_cluster = api.get(DEPLOYMENTS, {"cluster": foreign.cluster_id}).json()
    by_org = api.get(DEPLOYMENTS, {"organization": foreign.cluster.organization_id}).json()

    assert by_cluster["count"] == by_org["count"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cluster": "abc"}, "cluster"),
        ({"cluster": "0"}, "cluster"),
        ({"cluster": "-3"}, "cluster"),
        ({"cluster": "1.5"}, "cluster"),
        ({"cluster": str(10**30)}, "cluster"),
        ({"status": "sleeping"}, "status"),
        ({"status": "RUNNING"}, "status"),
        ({"organization": "x"}, "organization"),
        ({"organization": str(2**63)}, "organization"),
    ],
)
def test_bad_filter_values_are_400_naming_the_field(owner, cluster, as_user, params, field):
    DeploymentFactory(cluster=cluster)

    response = as_user(owner).get(DEPLOYMENTS, params)

    assert response.status_code == 400
    assert field in response.json()


def test_list_is_paginated_with_at_most_500_per_page(owner, cluster, as_user):
    Deployment.objects.bulk_create(
        DeploymentFactory.build_batch(501, cluster=cluster, created_by=owner)
    )
    api = as_user(owner)

    small = api.get(DEPLOYMENTS, {"page_size": 200, "page": 3}).json()
    capped = api.get(f"{DEPLOYMENTS}/", {"page_size": 501}).json()

    assert small["count"] == 501 and len(small["results"]) == 101
    assert small["next"] is None and small["previous"] is not None
    assert len(capped["results"]) == 500 and capped["next"] is not None


def test_retrieve(viewer, cluster, as_user):
    deployment = RunningDeploymentFactory(cluster=cluster, cpu=250)

    response = as_user(viewer).get(f"{_url(deployment)}/")

    assert response.status_code == 200
    data = response.json()
    assert data.keys() >= DETAIL_FIELDS
    assert data["id"] == deployment.pk
    assert data["status"] == "running"
    assert data["resources"] == {"cpu": 0.25, "ram_mb": 1024, "gpu": 0}


def test_outsiders_get_404_for_everything_about_a_deployment(outsider, cluster, as_user):
    deployment = RunningDeploymentFactory(cluster=cluster)
    api = as_user(outsider)

    for path in ("", "events", "dependents"):
        assert api.get(_url(deployment, path)).status_code == 404, path
    for action in ("complete", "fail", "cancel"):
        assert api.post(_url(deployment, action)).status_code == 404, action
    deployment.refresh_from_db()
    assert deployment.status == Status.RUNNING


@pytest.mark.parametrize("pk", [999_999, 999_999_999_999_999_999, 10**30])
def test_unknown_ids_are_404(owner, as_user, pk):
    api = as_user(owner)

    assert api.get(_url(pk)).status_code == 404
    assert api.get(_url(pk, "events")).status_code == 404
    assert api.post(_url(pk, "cancel")).status_code == 404


# --- complete, fail, cancel -------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"),
    [("complete", "completed"), ("fail", "failed"), ("cancel", "cancelled")],
)
def test_acting_on_a_running_deployment_frees_its_room(owner, cluster, as_user, action, status):
    deployment = RunningDeploymentFactory(cluster=cluster, cpu=3000, ram_mb=2048, gpu=1)

    response = as_user(owner).post(_url(deployment, action))

    assert response.status_code == 200, response.json()
    assert response.json().keys() >= DETAIL_FIELDS
    assert response.json()["status"] == status
    _assert_timestamp(response.json()["finished_at"])
    cluster.refresh_from_db()
    assert (cluster.allocated_cpu, cluster.allocated_ram_mb, cluster.allocated_gpu) == (0, 0, 0)


@pytest.mark.parametrize("status", [Status.PENDING, Status.QUEUED])
def test_waiting_deployments_can_be_cancelled(owner, cluster, as_user, status):
    deployment = DeploymentFactory(cluster=cluster, status=status)

    response = as_user(owner).post(_url(deployment, "cancel"))

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("complete", Status.QUEUED),
        ("complete", Status.PENDING),
        ("fail", Status.QUEUED),
        ("complete", Status.COMPLETED),
        ("fail", Status.CANCELLED),
        ("cancel", Status.COMPLETED),
        ("cancel", Status.FAILED),
        ("cancel", Status.CANCELLED),
    ],
)
def test_an_action_the_status_forbids_is_409(owner, cluster, as_user, action, status):
    deployment = DeploymentFactory(cluster=cluster, status=status)

    response = as_user(owner).post(_url(deployment, action))

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert status in response.json()["detail"]
    deployment.refresh_from_db()
    assert deployment.status == status


def test_developers_act_on_their_own_deployments_only(developer, cluster, as_user):
    api = as_user(developer)
    own = RunningDeploymentFactory(cluster=cluster, created_by=developer)
    others = RunningDeploymentFactory(cluster=cluster)

    on_others = [api.post(_url(others, a)).status_code for a in ("complete", "fail", "cancel")]
    on_own = api.post(_url(own, "complete"))

    assert on_others == [403, 403, 403]
    assert on_own.status_code == 200 and on_own.json()["status"] == "completed"
    others.refresh_from_db()
    assert others.status == Status.RUNNING


@pytest.mark.parametrize("role", ["owner", "admin_user"])
def test_owners_and_admins_act_on_anyones(request, role, cluster, as_user):
    api = as_user(request.getfixturevalue(role))
    running = RunningDeploymentFactory(cluster=cluster)
    queued = DeploymentFactory(cluster=cluster)

    assert api.post(_url(running, "fail")).status_code == 200
    assert api.post(_url(queued, "cancel")).status_code == 200


def test_viewers_may_not_act(viewer, cluster, as_user):
    api = as_user(viewer)
    deployment = RunningDeploymentFactory(cluster=cluster, created_by=viewer)

    codes = [api.post(_url(deployment, a)).status_code for a in ("complete", "fail", "cancel")]

    assert codes == [403, 403, 403]
    deployment.refresh_from_db()
    assert deployment.status == Status.RUNNING


# --- events -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_events_list_every_status_change_oldest_first(owner, viewer, organization, as_user):
    api = as_user(owner)
    cluster = ClusterFactory(organization=organization, capacity_cpu=1000)
    first = _create(api, cluster)
    second = _create(api, cluster)
    assert api.post(_url(first["id"], "complete")).status_code == 200

    events = _events(as_user(viewer), second["id"])

    assert all(e.keys() >= EVENT_FIELDS for e in events)
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        ("", "queued"),
        ("queued", "running"),
    ]
    assert events[0]["actor"] == owner.username
    assert events[1]["actor"] is None  # the scheduler
    # A start names what made room.
    assert f"the completion of deployment {first['id']}" in events[1]["reason"]
    first_events = _events(api, first["id"])
    assert [(e["from_status"], e["to_status"]) for e in first_events] == [
        ("", "queued"),
        ("queued", "running"),
        ("running", "completed"),
    ]
    assert first_events[2]["actor"] == owner.username
    assert owner.username in first_events[2]["reason"]
    stamps = [datetime.fromisoformat(e["at"]) for e in first_events]
    assert stamps == sorted(stamps)
    assert all(stamp.tzinfo is not None for stamp in stamps)


@pytest.mark.django_db(transaction=True)
def test_a_preemption_event_names_the_preemptor(owner, organization, as_user):
    api = as_user(owner)
    cluster = ClusterFactory(organization=organization, capacity_cpu=1000)
    low = _create(api, cluster, priority=1)
    high = _create(api, cluster, priority=9)
    assert (low["status"], high["status"]) == ("running", "running")

    victim = api.get(_url(low["id"])).json()
    victim_events = _events(api, low["id"])
    preemptor_events = _events(api, high["id"])

    assert victim["status"] == "queued" and victim["preemption_count"] == 1
    preempted = victim_events[-1]
    assert (preempted["from_status"], preempted["to_status"]) == ("running", "queued")
    assert f"deployment {high['id']}" in preempted["reason"]
    assert preempted["related_deployment"] == high["id"]
    started = preemptor_events[-1]
    assert (started["from_status"], started["to_status"]) == ("queued", "running")
    assert "preempt" in started["reason"] and str(low["id"]) in started["reason"]


# --- dependents -------------------------------------------------------------------------


def test_dependents_lists_what_waits_on_a_deployment(viewer, owner, cluster, as_user):
    base = RunningDeploymentFactory(cluster=cluster)
    unrelated = DeploymentFactory(cluster=cluster)
    api = as_user(owner)
    waiting = _create(api, cluster, depends_on=[base.pk])
    on_failure = _create(api, cluster, depends_on=[{"deployment": base.pk, "condition": "failed"}])
    _create(api, cluster, depends_on=[unrelated.pk])

    response = as_user(viewer).get(_url(base, "dependents"))
    none = as_user(viewer).get(_url(waiting["id"], "dependents"))

    assert response.status_code == 200
    assert [d["id"] for d in response.json()["results"]] == [waiting["id"], on_failure["id"]]
    assert all(d["status"] == "pending" for d in response.json()["results"])
    assert none.status_code == 200 and none.json()["results"] == []
