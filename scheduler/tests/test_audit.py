"""`manage.py audit` finds violations planted directly in the database, and passes a
clean state built through the real services and scheduler.

Rows are written with factories and `update()`, bypassing the services: that is how a
bug (or a hand edit) would leave the database. The CHECK constraints forbid
over-allocation, so we plant what the database allows.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.models import Condition, Dependency, Deployment, DeploymentEvent, Status
from deployments.services import (
    Action,
    DependencySpec,
    DeploymentSpec,
    deployment_act,
    deployment_create,
)
from deployments.tests.factories import DeploymentFactory
from hypervisor.resources import Resources
from scheduler.audit import audit

pytestmark = pytest.mark.django_db


def running(cluster, *, cpu=1000, priority=0, preemptible=True, **fields) -> Deployment:
    """A running deployment, with the cluster's counters kept right."""
    now = timezone.now()
    deployment = DeploymentFactory(
        cluster=cluster,
        cpu=cpu,
        priority=priority,
        preemptible=preemptible,
        status=Status.RUNNING,
        queued_at=now - timedelta(seconds=5),
        started_at=now,
        **fields,
    )
    DeploymentEvent.objects.create(
        deployment=deployment,
        at=now,
        from_status=Status.QUEUED,
        to_status=Status.RUNNING,
        reason="started",
    )
    cluster.refresh_from_db()
    cluster.set_allocated(cluster.allocated + deployment.resources)
    cluster.save()
    return deployment


def finished(cluster, status: Status, **fields) -> Deployment:
    fields.setdefault("finished_at", timezone.now())
    return DeploymentFactory(cluster=cluster, status=status, **fields)


def kinds(violations) -> list[tuple[str, int | None]]:
    return [(v.guarantee, v.deployment_id) for v in violations]


def test_a_consistent_state_passes():
    cluster = ClusterFactory(capacity_cpu=4000)
    running(cluster, cpu=3000, priority=5)
    DeploymentFactory(cluster=cluster, cpu=2000, priority=1)  # does not fit, lower priority
    assert audit() == []


def test_counters_that_differ_from_the_running_set_are_found():
    cluster = ClusterFactory(capacity_cpu=4000)
    running(cluster, cpu=1000)
    cluster.refresh_from_db()
    type(cluster).objects.filter(pk=cluster.pk).update(allocated_cpu=3000)  # below capacity
    violations = audit()
    assert kinds(violations) == [("counters", None)]
    assert "cpu 3" in str(violations[0]) and "cpu 1" in str(violations[0])


def test_a_queued_deployment_that_fits_is_idle_room():
    cluster = ClusterFactory(capacity_cpu=4000)
    running(cluster, cpu=1000)
    fits = DeploymentFactory(cluster=cluster, cpu=2000)
    assert kinds(audit()) == [("idle room", fits.pk)]


def test_a_starvation_reservation_may_hold_room():
    cluster = ClusterFactory(capacity_cpu=4000, starvation_after_seconds=60)
    running(cluster, cpu=2000, priority=9, preemptible=False)
    long_ago = timezone.now() - timedelta(hours=1)
    DeploymentFactory(cluster=cluster, cpu=3000, priority=1, queued_at=long_ago)  # starving
    DeploymentFactory(cluster=cluster, cpu=1000, priority=1)  # would fit, but behind it
    assert audit() == []


def test_a_queued_deployment_that_could_preempt_its_way_in_is_priority_inversion():
    cluster = ClusterFactory(capacity_cpu=4000)
    victim = running(cluster, cpu=3000, priority=1)
    urgent = DeploymentFactory(cluster=cluster, cpu=2000, priority=50)
    violations = audit()
    assert kinds(violations) == [("priority", urgent.pk)]
    assert str(victim.pk) in violations[0].message


def test_non_preemptible_or_equal_priority_work_is_not_an_inversion():
    cluster = ClusterFactory(capacity_cpu=4000)
    running(cluster, cpu=3000, priority=1, preemptible=False)
    running(cluster, cpu=1000, priority=50)
    DeploymentFactory(cluster=cluster, cpu=2000, priority=50)
    assert audit() == []


def test_a_pending_deployment_whose_dependency_completed_is_found():
    cluster = ClusterFactory()
    done = finished(cluster, Status.COMPLETED)
    stuck = DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)
    Dependency.objects.create(dependent=stuck, dependency=done, condition=Condition.SUCCEEDED)
    violations = audit()
    assert kinds(violations) == [("dependencies", stuck.pk)]
    assert "should be queued" in violations[0].message


def test_a_pending_deployment_whose_dependency_became_impossible_is_found():
    cluster = ClusterFactory()
    broken = finished(cluster, Status.FAILED)
    open_ = DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)
    stuck = DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)
    running(cluster)  # keeps `open_`'s other dependency open
    Dependency.objects.create(dependent=stuck, dependency=broken, condition=Condition.SUCCEEDED)
    Dependency.objects.create(dependent=stuck, dependency=open_, condition=Condition.FINISHED)
    violations = audit()
    assert kinds(violations) == [("dependencies", stuck.pk)]
    assert "should be cancelled" in violations[0].message


def test_a_pending_deployment_still_waiting_is_fine():
    cluster = ClusterFactory()
    upstream = running(cluster)
    waiting = DeploymentFactory(cluster=cluster, status=Status.PENDING, queued_at=None)
    Dependency.objects.create(dependent=waiting, dependency=upstream, condition=Condition.FAILED)
    assert audit() == []


def test_a_running_deployment_whose_succeeded_dependency_failed_is_found():
    cluster = ClusterFactory()
    failed = finished(cluster, Status.FAILED)
    wrong = running(cluster)
    Dependency.objects.create(dependent=wrong, dependency=failed, condition=Condition.SUCCEEDED)
    violations = audit()
    assert kinds(violations) == [("dependencies", wrong.pk)]
    assert "not met" in violations[0].message


def test_a_deployment_that_started_before_its_dependency_finished_is_found():
    cluster = ClusterFactory()
    upstream = finished(cluster, Status.COMPLETED)
    early = finished(cluster, Status.COMPLETED)
    Dependency.objects.create(dependent=early, dependency=upstream, condition=Condition.SUCCEEDED)
    DeploymentEvent.objects.create(
        deployment=early,
        at=upstream.finished_at - timedelta(minutes=5),
        from_status=Status.QUEUED,
        to_status=Status.RUNNING,
        reason="started",
    )
    violations = audit()
    assert kinds(violations) == [("dependencies", early.pk)]
    assert "before its dependency" in violations[0].message


def test_a_cancelled_dependent_that_never_ran_is_fine():
    cluster = ClusterFactory()
    failed = finished(cluster, Status.FAILED)
    dropped = finished(cluster, Status.CANCELLED)
    Dependency.objects.create(dependent=dropped, dependency=failed, condition=Condition.SUCCEEDED)
    assert audit() == []


def test_the_command_prints_each_violation_and_exits_1(capsys):
    cluster = ClusterFactory(capacity_cpu=4000)
    fits = DeploymentFactory(cluster=cluster, cpu=1000)
    with pytest.raises(SystemExit) as exited:
        call_command("audit")
    assert exited.value.code == 1
    out = capsys.readouterr()
    assert f"[idle room] cluster {cluster.pk}, deployment {fits.pk}" in out.out
    assert "1 violation" in out.err


@pytest.mark.django_db(transaction=True)
def test_a_state_built_by_the_services_and_scheduler_is_clean(capsys):
    actor = UserFactory()
    cluster = ClusterFactory(capacity_cpu=4000)

    def submit(cpu: int, priority: int = 0, depends_on=()) -> Deployment:
        spec = DeploymentSpec(
            name="job",
            image="registry.example.com/team/job:1",
            resources=Resources(cpu, 128, 0),
            priority=priority,
            depends_on=tuple(DependencySpec(d.pk, Condition.SUCCEEDED) for d in depends_on),
        )
        return deployment_create(actor=actor, cluster=cluster, spec=spec)

    first = submit(2000)
    second = submit(3000, priority=1)  # preempts `first`
    after = submit(1000, depends_on=[second])
    deployment_act(actor=actor, deployment_id=second.pk, action=Action.FAIL)  # cancels `after`
    submit(4000, priority=5)  # preempts `first` again
    deployment_act(actor=actor, deployment_id=first.pk, action=Action.CANCEL)
    assert Deployment.objects.get(pk=after.pk).status == Status.CANCELLED
    call_command("audit")
    assert "audit: clean" in capsys.readouterr().out
