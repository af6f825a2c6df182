"""Dependency conditions: their truth table, against the one written out by hand from
API.md in `scheduler.tests.guarantees` (not computed by `deployments.conditions`), and
resolution when a deployment waits on several
dependencies, by the finishing action and by the periodic safety net alone."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.conditions import condition_impossible, condition_met, pending_reason
from deployments.models import Deployment, DeploymentEvent, Status
from deployments.services import (
    Action,
    DependencySpec,
    DeploymentSpec,
    dependencies_sweep,
    deployment_act,
    deployment_create,
    resolve_dependents,
)
from deployments.signals import cascade_left
from hypervisor.resources import Resources
from scheduler.jobs import safety_net_job
from scheduler.tests.guarantees import MET_BY, impossible, met

STATUSES = ["pending", "queued", "running", "completed", "failed", "cancelled"]


@pytest.mark.parametrize("condition", sorted(MET_BY))
@pytest.mark.parametrize("status", STATUSES)
def test_the_truth_table_of_every_condition(condition, status):
    # The table of scheduler.tests.guarantees, written from API.md.
    assert condition_met(condition, status) is met(condition, status)
    # Impossible exactly when the dependency has ended without meeting it: ends are final.
    assert condition_impossible(condition, status) is impossible(condition, status)


def spec(*depends_on: DependencySpec) -> DeploymentSpec:
    return DeploymentSpec(
        name="step",
        image="registry.example.com/team/step:1",
        resources=Resources(500, 128, 0),
        depends_on=tuple(depends_on),
    )


@pytest.fixture
def actor(db):
    return UserFactory()


@pytest.fixture
def cluster(db):
    return ClusterFactory(capacity_cpu=8000)


def _status(deployment: Deployment) -> str:
    return Deployment.objects.values_list("status", flat=True).get(pk=deployment.pk)


@pytest.mark.django_db(transaction=True)
def test_a_deployment_waits_until_every_one_of_its_conditions_holds(actor, cluster):
    train = deployment_create(actor=actor, cluster=cluster, spec=spec())
    lint = deployment_create(actor=actor, cluster=cluster, spec=spec())
    probe = deployment_create(actor=actor, cluster=cluster, spec=spec())
    report = deployment_create(
        actor=actor,
        cluster=cluster,
        spec=spec(
            DependencySpec(train.pk, "succeeded"),
            DependencySpec(lint.pk, "finished"),
            DependencySpec(probe.pk, "failed"),
        ),
    )
    assert report.status == Status.PENDING
    assert report.status_reason == (
        f"waiting for deployment {train.pk} (running) to succeed; "
        f"deployment {lint.pk} (running) to finish; "
        f"deployment {probe.pk} (running) to fail or be cancelled"
    )

    deployment_act(actor=actor, deployment_id=train.pk, action=Action.COMPLETE)
    assert _status(report) == "pending"  # one of three met: not enough
    # The reason names exactly the unmet ones, in words, as stored and as shown live.
    waiting = (
        f"waiting for deployment {lint.pk} (running) to finish; "
        f"deployment {probe.pk} (running) to fail or be cancelled"
    )
    report.refresh_from_db()
    assert report.status_reason == waiting
    assert pending_reason(Deployment.objects.get(pk=report.pk)) == waiting

    deployment_act(actor=actor, deployment_id=lint.pk, action=Action.FAIL)
    assert _status(report) == "pending"  # two of three

    deployment_act(actor=actor, deployment_id=probe.pk, action=Action.CANCEL)
    assert _status(report) == "running"  # all three: queued, and the pass started it
    released = DeploymentEvent.objects.get(deployment=report, to_status=Status.QUEUED)
    assert (released.from_status, released.actor) == (Status.PENDING, None)
    assert released.reason == "dependencies met; waiting for resources"


def _two_and_a_dependent(actor, cluster, on_first: str, on_second: str):
    """Two running deployments and one that waits on both, with these conditions."""
    first = deployment_create(actor=actor, cluster=cluster, spec=spec())
    second = deployment_create(actor=actor, cluster=cluster, spec=spec())
    dependent = deployment_create(
        actor=actor,
        cluster=cluster,
        spec=spec(DependencySpec(first.pk, on_first), DependencySpec(second.pk, on_second)),
    )
    return first, second, dependent


@pytest.mark.django_db(transaction=True)
def test_one_impossible_condition_cancels_though_the_others_hold(actor, cluster):
    first, second, dependent = _two_and_a_dependent(actor, cluster, "finished", "succeeded")
    deployment_act(actor=actor, deployment_id=first.pk, action=Action.COMPLETE)
    deployment_act(actor=actor, deployment_id=second.pk, action=Action.FAIL)

    dependent.refresh_from_db()
    assert dependent.status == Status.CANCELLED
    assert dependent.status_reason == (
        f"cancelled: its dependency deployment {second.pk} (step) is failed, "
        "so the condition 'succeeded' can never be met"
    )
    cancelled = DeploymentEvent.objects.get(deployment=dependent, to_status=Status.CANCELLED)
    assert (cancelled.reason, cancelled.related_deployment_id) == (
        dependent.status_reason,
        second.pk,
    )


def _finish_without_resolution(deployment: Deployment, status: str) -> None:
    """A finish whose dependency resolution was lost (a crash between two
    transactions): the row ends, nothing settles its dependents. What the safety net
    exists for."""
    deployment.refresh_from_db()
    assert deployment.status == Status.RUNNING
    Deployment.objects.filter(pk=deployment.pk).update(status=status, finished_at=timezone.now())
    cluster = deployment.cluster
    cluster.refresh_from_db()
    cluster.set_allocated(cluster.allocated - deployment.resources)
    cluster.save(update_fields=["allocated_cpu", "allocated_ram_mb", "allocated_gpu"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("ended", "condition", "settled"),
    [
        ("completed", "succeeded", "running"),
        ("completed", "failed", "cancelled"),
        ("failed", "failed", "running"),
        ("failed", "succeeded", "cancelled"),
        ("failed", "finished", "running"),
        ("cancelled", "failed", "running"),
        ("cancelled", "finished", "running"),
        ("cancelled", "succeeded", "cancelled"),
    ],
)
def test_the_safety_net_alone_settles_dependents_of_any_end(
    actor, cluster, ended, condition, settled
):
    upstream = deployment_create(actor=actor, cluster=cluster, spec=spec())
    dependent = deployment_create(
        actor=actor, cluster=cluster, spec=spec(DependencySpec(upstream.pk, condition))
    )
    _finish_without_resolution(upstream, ended)
    assert _status(dependent) == "pending"

    safety_net_job()

    assert _status(dependent) == settled
    made_by = DeploymentEvent.objects.filter(deployment=dependent).last()
    assert made_by.actor is None  # the scheduler's doing, not a user's


@pytest.mark.django_db(transaction=True)
def test_the_safety_net_waits_for_every_condition_too(actor, cluster):
    done, busy, dependent = _two_and_a_dependent(actor, cluster, "failed", "finished")
    _finish_without_resolution(done, "failed")
    assert _status(busy) == "running"

    safety_net_job()
    assert _status(dependent) == "pending"

    _finish_without_resolution(busy, "completed")
    safety_net_job()
    assert _status(dependent) == "running"


@pytest.fixture
def cascades_left():
    """The cascades handed to the sweep (`deployments.signals.cascade_left`), as sent."""
    sent: list[tuple[int, int]] = []

    def receiver(sender, *, organization_id: int, after_pk: int, **kwargs) -> None:
        sent.append((organization_id, after_pk))

    cascade_left.connect(receiver)
    yield sent
    cascade_left.disconnect(receiver)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch", [2, 1])
def test_a_cascade_that_fits_a_batch_settles_at_once_a_larger_one_is_swept(
    actor, cluster, cascades_left, batch
):
    upstream = deployment_create(actor=actor, cluster=cluster, spec=spec())
    dependents = [
        deployment_create(actor=actor, cluster=cluster, spec=spec(DependencySpec(upstream.pk)))
        for _ in range(2)
    ]
    with override_settings(DEPENDENCY_CASCADE_BATCH=batch):
        deployment_act(actor=actor, deployment_id=upstream.pk, action=Action.COMPLETE)

    # Two dependents: settled in the finishing transaction when a batch holds two, else
    # handed to the sweep (in-process here, after the commit). Either way both run.
    assert cascades_left == ([] if batch == 2 else [(cluster.organization_id, upstream.pk)])
    assert [_status(d) for d in dependents] == ["running", "running"]


@pytest.mark.django_db(transaction=True)
def test_resolution_settles_the_dependents_of_several_finished_at_once(actor, cluster):
    """`resolve_dependents` takes any number of finished deployments (callers pass one
    today): the closure's query must hold for several."""
    first, second = (deployment_create(actor=actor, cluster=cluster, spec=spec()) for _ in "ab")
    on_first, on_second = (
        deployment_create(actor=actor, cluster=cluster, spec=spec(DependencySpec(d.pk, c)))
        for d, c in ((first, "succeeded"), (second, "succeeded"))
    )
    _finish_without_resolution(first, "completed")
    _finish_without_resolution(second, "failed")

    with transaction.atomic():
        assert resolve_dependents(finished_ids=[first.pk, second.pk]) is True

    assert (_status(on_first), _status(on_second)) == ("running", "cancelled")


@pytest.mark.django_db(transaction=True)
def test_a_sweep_refuses_to_run_inside_a_transaction(actor, cluster):
    """Each batch commits on its own (an interruption leaves every deployment settled or
    pending): inside an outer transaction nothing would commit until its end."""
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        dependencies_sweep(organization_id=cluster.organization_id)
