"""Dependencies between deployments, on PostgreSQL through the real services.

A hypothesis state machine builds random DAGs across three clusters of one
organization and finishes deployments at random; after every step guarantee 2 holds,
nothing waits on a dependency that can no longer be met, and cascades cancel exactly
the deployments whose conditions became impossible.
"""

from __future__ import annotations

import contextlib

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.models import Condition, Dependency, Deployment, DeploymentEvent, Status
from deployments.services import (
    Action,
    DependencySpec,
    DeploymentSpec,
    InvalidTransition,
    deployment_act,
    deployment_create,
)
from hypervisor.resources import Resources
from hypervisor.tests.hypothesis_profiles import scaled
from orgs.tests.factories import OrganizationFactory
from scheduler.tests.guarantees import dependency_violations, impossible, met

pytestmark = pytest.mark.django_db(transaction=True)


def spec(*depends_on: DependencySpec, cpu: int = 1000, priority: int = 0) -> DeploymentSpec:
    return DeploymentSpec(
        name="dag",
        image="registry.example.com/team/step:1",
        resources=Resources(cpu, 256, 0),
        priority=priority,
        depends_on=tuple(depends_on),
    )


def dependency_state_violations(organization_id: int) -> list[str]:
    """Pending means 'possible but not yet met'; a cascade cancels only the impossible."""
    problems = []
    deployments = Deployment.objects.filter(cluster__organization_id=organization_id)
    for deployment in deployments.prefetch_related("dependency_links__dependency"):
        links = [(link.dependency, link.condition) for link in deployment.dependency_links.all()]
        blocked = [d.pk for d, c in links if impossible(c, d.status)]
        all_met = all(met(c, d.status) for d, c in links)
        if deployment.status == Status.PENDING and blocked:
            problems.append(f"{deployment.pk} still waits on impossible {blocked}")
        if deployment.status == Status.PENDING and all_met:
            problems.append(f"{deployment.pk} is pending with every dependency met")
        cascaded = DeploymentEvent.objects.filter(
            deployment=deployment, to_status=Status.CANCELLED, actor=None
        ).first()
        if cascaded is not None:
            if cascaded.related_deployment_id not in blocked:
                problems.append(
                    f"{deployment.pk} cancelled though {cascaded.related_deployment_id} allows it"
                )
            if f"deployment {cascaded.related_deployment_id}" not in cascaded.reason:
                problems.append(f"{deployment.pk}'s cancellation does not name its dependency")
    problems += dependency_violations(deployments)
    return problems


class DependencyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.organization = OrganizationFactory()
        self.clusters = [
            ClusterFactory(organization=self.organization, capacity_cpu=2000) for _ in range(3)
        ]
        self.actor = UserFactory()
        self.ids: list[int] = []

    @rule(
        data=st.data(),
        cluster=st.integers(0, 2),
        priority=st.integers(0, 2),
        conditions=st.lists(st.sampled_from(list(Condition)), max_size=3),
    )
    def create(self, data, cluster: int, priority: int, conditions: list[Condition]) -> None:
        depends_on = []
        if self.ids:
            targets = data.draw(
                st.lists(st.sampled_from(self.ids), max_size=len(conditions), unique=True)
            )
            depends_on = [DependencySpec(t, c) for t, c in zip(targets, conditions, strict=False)]
        try:
            created = deployment_create(
                actor=self.actor,
                cluster=self.clusters[cluster],
                spec=spec(*depends_on, priority=priority),
            )
        except ValidationError as error:
            # Only an already impossible condition may be refused.
            statuses = {
                d.pk: d.status
                for d in Deployment.objects.filter(pk__in=[x.deployment_id for x in depends_on])
            }
            assert any(impossible(x.condition, statuses[x.deployment_id]) for x in depends_on), (
                error
            )
            return
        self.ids.append(created.pk)

    @rule(data=st.data(), action=st.sampled_from(list(Action)))
    def finish(self, data, action: Action) -> None:
        if not self.ids:
            return
        deployment_id = data.draw(st.sampled_from(self.ids))
        with contextlib.suppress(InvalidTransition):  # the API's 409
            deployment_act(actor=self.actor, deployment_id=deployment_id, action=action)

    @invariant()
    def dependencies_hold(self) -> None:
        assert dependency_state_violations(self.organization.pk) == []


@pytest.mark.timeout(900)  # a failure's shrinking re-runs many examples on PostgreSQL
def test_random_dags_keep_the_dependency_guarantees():
    run_state_machine_as_test(
        DependencyMachine,
        settings=settings(
            max_examples=scaled(12),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_a_failure_cascades_transitively_across_clusters_in_one_go():
    organization = OrganizationFactory()
    east, west = (ClusterFactory(organization=organization) for _ in range(2))
    actor = UserFactory()
    root = deployment_create(actor=actor, cluster=east, spec=spec())
    middle = deployment_create(actor=actor, cluster=west, spec=spec(DependencySpec(root.pk)))
    leaf = deployment_create(actor=actor, cluster=east, spec=spec(DependencySpec(middle.pk)))
    cleanup = deployment_create(
        actor=actor, cluster=west, spec=spec(DependencySpec(middle.pk, Condition.FAILED))
    )
    assert [d.status for d in (middle, leaf, cleanup)] == [Status.PENDING] * 3

    deployment_act(actor=actor, deployment_id=root.pk, action=Action.FAIL)

    middle, leaf, cleanup = (Deployment.objects.get(pk=d.pk) for d in (middle, leaf, cleanup))
    assert middle.status == Status.CANCELLED and f"deployment {root.pk}" in middle.status_reason
    assert leaf.status == Status.CANCELLED and f"deployment {middle.pk}" in leaf.status_reason
    # `failed` is met by a cancellation: the clean-up step runs.
    assert cleanup.status == Status.RUNNING


def test_completion_queues_dependents_on_another_cluster_and_starts_them():
    organization = OrganizationFactory()
    east, west = (ClusterFactory(organization=organization) for _ in range(2))
    actor = UserFactory()
    prepare = deployment_create(actor=actor, cluster=east, spec=spec())
    train = deployment_create(
        actor=actor, cluster=west, spec=spec(DependencySpec(prepare.pk), priority=7)
    )
    assert train.status == Status.PENDING
    assert f"deployment {prepare.pk} (running) to succeed" in train.status_reason

    deployment_act(actor=actor, deployment_id=prepare.pk, action=Action.COMPLETE)

    train.refresh_from_db()
    assert train.status == Status.RUNNING and train.priority == 7
    transitions = list(
        DeploymentEvent.objects.filter(deployment=train).values_list("from_status", "to_status")
    )
    assert transitions == [("", "pending"), ("pending", "queued"), ("queued", "running")]


def test_the_graph_is_acyclic_by_construction():
    """A dependency must exist before its dependent, so no cycle can be written: the
    database refuses a link from an older deployment to a newer one."""
    cluster = ClusterFactory()
    actor = UserFactory()
    first = deployment_create(actor=actor, cluster=cluster, spec=spec())
    second = deployment_create(actor=actor, cluster=cluster, spec=spec(DependencySpec(first.pk)))
    with pytest.raises(IntegrityError), transaction.atomic():
        Dependency.objects.create(dependent=first, dependency=second, condition="succeeded")
    with pytest.raises(IntegrityError), transaction.atomic():
        Dependency.objects.create(dependent=first, dependency=first, condition="succeeded")


def test_impossible_and_foreign_dependencies_are_refused():
    cluster = ClusterFactory()
    foreign = ClusterFactory()
    actor = UserFactory()
    done = deployment_create(actor=actor, cluster=cluster, spec=spec())
    deployment_act(actor=actor, deployment_id=done.pk, action=Action.COMPLETE)
    other = deployment_create(actor=actor, cluster=foreign, spec=spec())
    for bad in (
        DependencySpec(done.pk, Condition.FAILED),
        DependencySpec(other.pk),
        DependencySpec(10**12),
    ):
        with pytest.raises(ValidationError) as raised:
            deployment_create(actor=actor, cluster=cluster, spec=spec(bad))
        assert "depends_on" in raised.value.message_dict
    met = deployment_create(
        actor=actor, cluster=cluster, spec=spec(DependencySpec(done.pk, Condition.FINISHED))
    )
    assert met.status in (Status.QUEUED, Status.RUNNING)


@pytest.mark.parametrize("batch", [1, 2])
def test_random_dags_keep_the_guarantees_when_cascades_go_in_batches(batch):
    """Issue 16: with a tiny `DEPENDENCY_CASCADE_BATCH` nearly every cascade is left to
    the sweep after the commit (in-process here, in short transactions of `batch`
    deployments): the same guarantees hold after every step."""
    with override_settings(DEPENDENCY_CASCADE_BATCH=batch):
        run_state_machine_as_test(
            DependencyMachine,
            settings=settings(
                max_examples=8,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
