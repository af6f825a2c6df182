"""The deployment state machine: every transition for every actor, on both lifecycles;
every illegal people's action a 409 through the API; the room that `starting` and
`stopping` hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.locking import lock_schedulable
from deployments.models import FINISHED, HOLDS_ROOM, Deployment, DeploymentEvent, Status
from deployments.statemachine import (
    RULES,
    Action,
    Change,
    DependencyAction,
    InvalidTransition,
    Lifecycle,
    RuntimeAction,
    SchedulerAction,
    lifecycle_of,
    step,
    transition,
    transition_bulk,
)
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory
from hypervisor.resources import Resources
from scheduler.services import schedule_cluster

# Where each action leads from each status it applies to: (manual, runtime). A stop of
# room-holding work passes through `stopping` on a runtime; a start through `starting`.
EXPECTED = {
    (Action.COMPLETE, Status.STARTING): (Status.COMPLETED, Status.STOPPING),
    (Action.COMPLETE, Status.RUNNING): (Status.COMPLETED, Status.STOPPING),
    (Action.FAIL, Status.STARTING): (Status.FAILED, Status.STOPPING),
    (Action.FAIL, Status.RUNNING): (Status.FAILED, Status.STOPPING),
    (Action.CANCEL, Status.PENDING): (Status.CANCELLED, Status.CANCELLED),
    (Action.CANCEL, Status.QUEUED): (Status.CANCELLED, Status.CANCELLED),
    (Action.CANCEL, Status.STARTING): (Status.CANCELLED, Status.STOPPING),
    (Action.CANCEL, Status.RUNNING): (Status.CANCELLED, Status.STOPPING),
    (DependencyAction.RELEASE, Status.PENDING): (Status.QUEUED, Status.QUEUED),
    (DependencyAction.ABANDON, Status.PENDING): (Status.CANCELLED, Status.CANCELLED),
    (SchedulerAction.START, Status.QUEUED): (Status.RUNNING, Status.STARTING),
    (SchedulerAction.PREEMPT, Status.STARTING): (Status.QUEUED, Status.STOPPING),
    (SchedulerAction.PREEMPT, Status.RUNNING): (Status.QUEUED, Status.STOPPING),
    (RuntimeAction.STARTED, Status.STARTING): (Status.RUNNING, Status.RUNNING),
    (RuntimeAction.STOPPED, Status.STOPPING): (Status.QUEUED, Status.QUEUED),
    (RuntimeAction.EXITED_OK, Status.STARTING): (Status.COMPLETED, Status.COMPLETED),
    (RuntimeAction.EXITED_OK, Status.RUNNING): (Status.COMPLETED, Status.COMPLETED),
    (RuntimeAction.EXITED_ERROR, Status.STARTING): (Status.FAILED, Status.FAILED),
    (RuntimeAction.EXITED_ERROR, Status.RUNNING): (Status.FAILED, Status.FAILED),
}
ALL_ACTIONS = list(RULES)
PAIRS = [(a, s) for a in ALL_ACTIONS for s in Status]


def test_the_table_is_exactly_the_expected_one():
    allowed = {(a, s) for a in ALL_ACTIONS for s in RULES[a].sources}
    assert allowed == set(EXPECTED)


@pytest.mark.parametrize(("action", "status"), PAIRS)
def test_every_action_from_every_status(action, status):
    for lifecycle, index in ((Lifecycle.MANUAL, 0), (Lifecycle.RUNTIME, 1)):
        if (action, status) not in EXPECTED:
            with pytest.raises(InvalidTransition, match=f"Cannot {action} a deployment that is"):
                step(action, status, lifecycle=lifecycle, stopping_to=Status.QUEUED)
            continue
        moved = step(action, status, lifecycle=lifecycle, stopping_to=Status.QUEUED)
        assert moved.status == EXPECTED[action, status][index]
        if moved.status == Status.STOPPING:
            final = EXPECTED[action, status][0]
            assert moved.stopping_to == final
        else:
            assert moved.stopping_to == ""


# The refusal in full, for each action from a status it does not apply to: the action
# under the name docs/scheduling.md gives it, and the statuses it applies to.
REFUSALS = [
    (Action.COMPLETE, Status.QUEUED, "complete", "running, starting"),
    (Action.FAIL, Status.PENDING, "fail", "running, starting"),
    (Action.CANCEL, Status.COMPLETED, "cancel", "pending, queued, running, starting"),
    (DependencyAction.RELEASE, Status.QUEUED, "release", "pending"),
    (DependencyAction.ABANDON, Status.RUNNING, "abandon", "pending"),
    (SchedulerAction.START, Status.RUNNING, "start", "queued"),
    (SchedulerAction.PREEMPT, Status.QUEUED, "preempt", "running, starting"),
    (RuntimeAction.STARTED, Status.RUNNING, "started", "starting"),
    (RuntimeAction.STOPPED, Status.RUNNING, "stopped", "stopping"),
    (RuntimeAction.EXITED_OK, Status.QUEUED, "exited_ok", "running, starting"),
    (RuntimeAction.EXITED_ERROR, Status.STOPPING, "exited_error", "running, starting"),
]


def test_the_refusals_cover_every_action():
    assert {action for action, *_ in REFUSALS} == set(RULES)


@pytest.mark.parametrize(("action", "status", "name", "applies_to"), REFUSALS)
def test_a_refusal_names_the_action_and_where_it_applies(action, status, name, applies_to):
    with pytest.raises(InvalidTransition) as refused:
        step(action, status, lifecycle=Lifecycle.RUNTIME)
    assert refused.value.message == (
        f"Cannot {name} a deployment that is {status.value}; {name} applies to {applies_to}."
    )


def test_every_cluster_today_is_manual(db):
    assert lifecycle_of(ClusterFactory()) == Lifecycle.MANUAL


# --- through the API: people's actions -------------------------------------------------


def _in_status(cluster: Cluster, status: Status) -> Deployment:
    if status in HOLDS_ROOM:
        extra = {"stopping_to": Status.QUEUED} if status == Status.STOPPING else {}
        return RunningDeploymentFactory(cluster=cluster, status=status, **extra)
    finished_at = timezone.now() if status in FINISHED else None
    queued_at = None if status == Status.PENDING else timezone.now()
    return DeploymentFactory(
        cluster=cluster, status=status, finished_at=finished_at, queued_at=queued_at
    )


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(Status))
def test_people_act_through_the_api(owner, as_user, action, status):
    cluster = ClusterFactory(organization=owner.memberships.get().organization)
    deployment = _in_status(cluster, status)
    events_before = DeploymentEvent.objects.filter(deployment=deployment).count()
    response = as_user(owner).post(f"/api/v1/deployments/{deployment.pk}/{action}")
    deployment.refresh_from_db()
    cluster.refresh_from_db()
    if (action, status) not in EXPECTED:
        assert response.status_code == 409, response.json()
        assert response.json()["code"] == "invalid_transition"  # API.md's error codes
        assert f"Cannot {action} a deployment that is {status}" in response.json()["detail"]
        assert deployment.status == status
        assert DeploymentEvent.objects.filter(deployment=deployment).count() == events_before
        return
    assert response.status_code == 200, response.json()
    final = EXPECTED[action, status][0]
    assert response.json()["status"] == deployment.status == final
    event = DeploymentEvent.objects.filter(deployment=deployment).latest("id")
    assert (event.from_status, event.to_status, event.actor) == (status, final, owner)
    assert cluster.allocated == Resources()  # the room it held, if any, is free again


# --- a runtime's lifecycle: room held while starting and stopping ----------------------


@pytest.fixture
def cluster(db):
    return ClusterFactory(capacity_cpu=4000, capacity_ram_mb=8192, capacity_gpu=0)


def _act(deployment: Deployment, action, **kwargs) -> None:
    cluster = Cluster.objects.get(pk=deployment.cluster_id)
    transition(
        deployment,
        action,
        cluster=cluster,
        reason=str(action),
        lifecycle=Lifecycle.RUNTIME,
        **kwargs,
    )


def _allocated_cpu(cluster: Cluster) -> int:
    cluster.refresh_from_db()
    return cluster.allocated_cpu


def test_runtime_start_holds_room_until_the_stop_is_confirmed(cluster):
    deployment = DeploymentFactory(cluster=cluster, cpu=3000, ram_mb=0)
    _act(deployment, SchedulerAction.START)
    assert (deployment.status, _allocated_cpu(cluster)) == (Status.STARTING, 3000)
    assert deployment.started_at is not None
    started_at = deployment.started_at  # the start; neither its confirmation nor the stop
    _act(deployment, RuntimeAction.STARTED)
    assert (deployment.status, _allocated_cpu(cluster)) == (Status.RUNNING, 3000)
    _act(deployment, SchedulerAction.PREEMPT, related_id=None)
    assert (deployment.status, deployment.stopping_to) == (Status.STOPPING, Status.QUEUED)
    deployment.refresh_from_db()
    assert deployment.started_at == started_at
    assert (_allocated_cpu(cluster), deployment.preemption_count) == (3000, 1)
    _act(deployment, RuntimeAction.STOPPED)
    deployment.refresh_from_db()
    assert (deployment.status, deployment.stopping_to, deployment.started_at) == (
        Status.QUEUED,
        "",
        None,
    )
    assert _allocated_cpu(cluster) == 0
    path = list(
        DeploymentEvent.objects.filter(deployment=deployment).values_list(
            "from_status", "to_status"
        )
    )
    assert path == [
        (Status.QUEUED, Status.STARTING),
        (Status.STARTING, Status.RUNNING),
        (Status.RUNNING, Status.STOPPING),
        (Status.STOPPING, Status.QUEUED),
    ]


@pytest.mark.parametrize(
    ("action", "final"),
    [
        (Action.COMPLETE, Status.COMPLETED),
        (Action.FAIL, Status.FAILED),
        (Action.CANCEL, Status.CANCELLED),
    ],
)
def test_runtime_people_stop_through_stopping(cluster, action, final):
    deployment = RunningDeploymentFactory(cluster=cluster, cpu=2000)
    _act(deployment, action)
    assert (deployment.status, _allocated_cpu(cluster)) == (Status.STOPPING, 2000)
    assert deployment.finished_at is None
    _act(deployment, RuntimeAction.STOPPED)
    assert (deployment.status, _allocated_cpu(cluster)) == (final, 0)
    assert deployment.finished_at is not None


@pytest.mark.parametrize(
    ("action", "final"),
    [(RuntimeAction.EXITED_OK, Status.COMPLETED), (RuntimeAction.EXITED_ERROR, Status.FAILED)],
)
def test_runtime_exit_ends_it_and_frees_its_room(cluster, action, final):
    deployment = RunningDeploymentFactory(cluster=cluster, cpu=2000)
    _act(deployment, action)
    assert (deployment.status, _allocated_cpu(cluster)) == (final, 0)


def test_bulk_form_on_a_runtime_holds_room_for_starts_and_victims(cluster):
    victim = RunningDeploymentFactory(cluster=cluster, cpu=3000, preemptible=True)
    waiting = DeploymentFactory(
        cluster=cluster, cpu=1000, priority=5, status_reason="needs 1 CPU, 1 CPU free"
    )
    cluster.refresh_from_db()
    rows = lock_schedulable(cluster.pk)
    now = timezone.now()
    transition_bulk(
        cluster=cluster,
        rows=rows,
        changes=[
            Change(victim.pk, SchedulerAction.PREEMPT, "preempted", waiting.pk),
            Change(waiting.pk, SchedulerAction.START, "started"),
        ],
        lifecycle=Lifecycle.RUNTIME,
        now=now,
    )
    # The rows, updated in memory too: a start no longer waits for anything.
    row = {r.id: r for r in rows}
    assert (row[waiting.pk].status, row[waiting.pk].started_at) == (Status.STARTING, now)
    assert row[waiting.pk].status_reason == ""
    assert row[victim.pk].status == Status.STOPPING
    victim.refresh_from_db()
    waiting.refresh_from_db()
    assert (victim.status, victim.stopping_to, victim.preemption_count) == (
        Status.STOPPING,
        Status.QUEUED,
        1,
    )
    assert (waiting.status, waiting.status_reason) == (Status.STARTING, "")
    assert _allocated_cpu(cluster) == 4000  # both hold room: the victim until confirmed


def test_a_pass_leaves_the_room_of_a_stopping_deployment_alone(cluster):
    RunningDeploymentFactory(
        cluster=cluster, cpu=3000, status=Status.STOPPING, stopping_to="queued"
    )
    waiting = DeploymentFactory(cluster=cluster, cpu=2000)
    result = schedule_cluster(cluster_id=cluster.pk)
    waiting.refresh_from_db()
    assert (result.started, waiting.status) == ([], Status.QUEUED)
    assert _allocated_cpu(cluster) == 3000


def test_the_database_refuses_a_stopping_row_without_its_outcome(cluster):
    with pytest.raises(IntegrityError), transaction.atomic():
        RunningDeploymentFactory(cluster=cluster, status=Status.STOPPING)


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_each_preemption_counts_one_more(cluster, bulk):
    deployment = RunningDeploymentFactory(cluster=cluster, cpu=1000, preemption_count=2)
    if bulk:  # as a pass applies its plan, on a manual cluster
        rows = lock_schedulable(cluster.pk)
        transition_bulk(
            cluster=Cluster.objects.get(pk=cluster.pk),
            rows=rows,
            changes=[Change(deployment.pk, SchedulerAction.PREEMPT, "preempted")],
            lifecycle=Lifecycle.MANUAL,
            now=timezone.now(),
        )
        [row] = rows  # the rows are updated in memory too, as the database
        assert (row.status, row.preemption_count) == (Status.QUEUED, 3)
    else:  # on a runtime's cluster: stopping until confirmed
        _act(deployment, SchedulerAction.PREEMPT)
        assert deployment.preemption_count == 3
    deployment.refresh_from_db()
    assert deployment.preemption_count == 3
    assert deployment.status == (Status.QUEUED if bulk else Status.STOPPING)


def test_a_history_begins_with_the_creation(owner, as_user):
    cluster = ClusterFactory(organization=owner.memberships.get().organization)
    api = as_user(owner)
    body = {
        "cluster": cluster.pk,
        "name": "job",
        "image": "python:3.11",
        "resources": {"cpu": 0.5, "ram_mb": 10, "gpu": 0},
    }
    created = api.post("/api/v1/deployments", body, format="json")
    assert created.status_code == 201, created.json()
    events = api.get(f"/api/v1/deployments/{created.json()['id']}/events").json()["results"]
    first = events[0]  # then the pass's start
    assert (first["from_status"], first["to_status"], first["reason"], first["actor"]) == (
        "",
        "queued",
        "created",
        owner.username,
    )


def test_a_release_queues_it_now_and_a_preemption_keeps_its_place(cluster):
    pending = DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)
    before = timezone.now()
    _act(pending, DependencyAction.RELEASE)
    pending.refresh_from_db()
    assert pending.status == Status.QUEUED
    assert before <= pending.queued_at <= timezone.now()  # its place: the release

    place = timezone.now() - timedelta(hours=1)
    victim = RunningDeploymentFactory(cluster=cluster, cpu=1000, queued_at=place)
    _act(victim, SchedulerAction.PREEMPT)
    _act(victim, RuntimeAction.STOPPED)
    victim.refresh_from_db()
    assert (victim.status, victim.queued_at) == (Status.QUEUED, place)  # back at its place
