"""A hypothesis state machine over the real services and PostgreSQL: random creates,
completions, failures, cancellations and capacity changes; after every step the
guarantees of API.md hold in the database."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from accounts.tests.factories import UserFactory
from clusters.services import CapacityError, ClusterChanges, cluster_update
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, Status
from deployments.services import (
    Action,
    DeploymentSpec,
    InvalidTransition,
    deployment_act,
    deployment_create,
)
from hypervisor.resources import Resources
from hypervisor.tests.hypothesis_profiles import scaled
from scheduler.tests.guarantees import all_violations

pytestmark = pytest.mark.django_db(transaction=True)

requests = st.builds(
    Resources,
    cpu=st.sampled_from([250, 500, 1000, 1500, 2000, 3000]),
    ram_mb=st.sampled_from([128, 512, 1024, 4096]),
    gpu=st.sampled_from([0, 0, 0, 1, 2]),
)


class SchedulerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.actor = UserFactory()
        self.ids: list[int] = []

    @initialize(policy=st.sampled_from(["fifo", "pack"]))
    def new_cluster(self, policy: str) -> None:
        # A fresh cluster per run: earlier runs' rows cannot interfere.
        self.cluster = ClusterFactory(
            capacity_cpu=4000, capacity_ram_mb=8192, capacity_gpu=2, policy=policy
        )

    @rule(resources=requests, priority=st.integers(0, 3), preemptible=st.booleans())
    def create(self, resources: Resources, priority: int, preemptible: bool) -> None:
        self.cluster.refresh_from_db()
        if not resources.fits_in(self.cluster.capacity):
            return  # refused at creation (400); covered by the API tests
        spec = DeploymentSpec(
            name="sm",
            image="registry.example.com/team/job:1",
            resources=resources,
            priority=priority,
            preemptible=preemptible,
        )
        self.ids.append(deployment_create(actor=self.actor, cluster=self.cluster, spec=spec).pk)

    @rule(data=st.data(), action=st.sampled_from(list(Action)))
    def act(self, data: st.DataObject, action: Action) -> None:
        if not self.ids:
            return
        deployment_id = data.draw(st.sampled_from(self.ids))
        before = Deployment.objects.get(pk=deployment_id).status
        try:
            deployment_act(actor=self.actor, deployment_id=deployment_id, action=action)
        except InvalidTransition:
            allowed = (
                {Status.RUNNING}
                if action != Action.CANCEL
                else {Status.PENDING, Status.QUEUED, Status.RUNNING}
            )
            assert before not in allowed

    @rule(cpu=st.sampled_from([2000, 3000, 4000, 6000]), gpu=st.integers(0, 3))
    def change_capacity(self, cpu: int, gpu: int) -> None:
        try:
            cluster_update(
                cluster_id=self.cluster.pk,
                changes=ClusterChanges(capacity=Resources(cpu, 8192, gpu)),
            )
        except CapacityError:
            self.cluster.refresh_from_db()
            assert not self.cluster.allocated.fits_in(Resources(cpu, 8192, gpu))

    @invariant()
    def guarantees_hold(self) -> None:
        assert all_violations(self.cluster) == []


@pytest.mark.timeout(900)  # a failure's shrinking re-runs many examples on PostgreSQL
def test_guarantees_hold_after_every_step():
    run_state_machine_as_test(
        SchedulerMachine,
        settings=settings(
            max_examples=scaled(12),
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
