"""The shortcuts of scheduler/incremental.py decide exactly what the full planner would.

A hypothesis state machine plays one random stream of events on two twin clusters of
PostgreSQL: the services (creates placed at once when certain, completions and
cancellations that skip the pass when nothing could start) on one, and on the other the
reference: the same change written plainly, then a full pass after every event. After
each event both hold the same deployments in the same statuses, and the full planner
has nothing left to do on the first.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import planner
from accounts.tests.factories import UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.locking import lock_schedulable
from deployments.models import Deployment, Status
from deployments.services import Action, DeploymentSpec, deployment_act, deployment_create
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory
from hypervisor.resources import Resources
from scheduler.services import PassResult, pass_finished, schedule_cluster, snapshot_of
from scheduler.tests.guarantees import all_violations, capacity_violations

pytestmark = pytest.mark.django_db(transaction=True)

requests = st.builds(
    Resources,
    cpu=st.sampled_from([250, 500, 1000, 2000, 3000]),
    ram_mb=st.sampled_from([128, 1024, 4096]),
    gpu=st.sampled_from([0, 0, 0, 1]),
)
IMAGE = "registry.example.com/team/job:1"
FINAL = {
    Action.COMPLETE: Status.COMPLETED,
    Action.FAIL: Status.FAILED,
    Action.CANCEL: Status.CANCELLED,
}


class TwinClusters(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.actor = UserFactory()
        self.pairs: list[tuple[int, int]] = []  # (on the services' cluster, on the reference)

    @initialize(policy=st.sampled_from(["fifo", "pack"]), starvation=st.sampled_from([None, 0]))
    def new_clusters(self, policy: str, starvation: int | None) -> None:
        shape = {
            "capacity_cpu": 4000,
            "capacity_ram_mb": 8192,
            "capacity_gpu": 1,
            "policy": policy,
            "starvation_after_seconds": starvation,
        }
        self.cluster, self.reference = ClusterFactory(**shape), ClusterFactory(**shape)

    @rule(resources=requests, priority=st.integers(0, 3), preemptible=st.booleans())
    def create(self, resources: Resources, priority: int, preemptible: bool) -> None:
        spec = DeploymentSpec(
            name="twin",
            image=IMAGE,
            resources=resources,
            priority=priority,
            preemptible=preemptible,
        )
        mine = deployment_create(actor=self.actor, cluster=self.cluster, spec=spec)
        theirs = Deployment.objects.create(
            cluster=self.reference,
            name="twin",
            image=IMAGE,
            cpu=resources.cpu,
            ram_mb=resources.ram_mb,
            gpu=resources.gpu,
            priority=priority,
            preemptible=preemptible,
            created_by=self.actor,
            status=Status.QUEUED,
            queued_at=timezone.now(),
        )
        schedule_cluster(cluster_id=self.reference.pk)
        self.pairs.append((mine.pk, theirs.pk))

    @rule(data=st.data(), action=st.sampled_from(list(Action)))
    def act(self, data: st.DataObject, action: Action) -> None:
        if not self.pairs:
            return
        mine, theirs = data.draw(st.sampled_from(self.pairs))
        reference = Deployment.objects.get(pk=theirs)
        allowed = {Status.RUNNING} if action != Action.CANCEL else {Status.QUEUED, Status.RUNNING}
        if reference.status not in allowed:
            return
        deployment_act(actor=self.actor, deployment_id=mine, action=action)
        Deployment.objects.filter(pk=theirs).update(
            status=FINAL[action], finished_at=timezone.now()
        )
        schedule_cluster(cluster_id=self.reference.pk)  # recomputes the allocation too

    @invariant()
    def same_outcome_as_a_pass_after_every_event(self) -> None:
        statuses = dict(
            Deployment.objects.filter(
                Q(cluster=self.cluster) | Q(cluster=self.reference)
            ).values_list("pk", "status")
        )
        counts = dict(
            Deployment.objects.filter(
                Q(cluster=self.cluster) | Q(cluster=self.reference)
            ).values_list("pk", "preemption_count")
        )
        for mine, theirs in self.pairs:
            assert (statuses[mine], counts[mine]) == (statuses[theirs], counts[theirs])
        self.cluster.refresh_from_db()
        self.reference.refresh_from_db()
        assert self.cluster.allocated == self.reference.allocated
        if self.cluster.starvation_after_seconds is None:  # reservations excepted from 4
            assert all_violations(self.cluster) == []
        else:
            assert capacity_violations(self.cluster) == []
        assert not _full_plan(self.cluster).changed


def _full_plan(cluster) -> planner.Plan:
    with transaction.atomic():
        rows = lock_schedulable(cluster.pk)
    return planner.plan(snapshot_of(cluster, rows, now=timezone.now()))


def test_shortcuts_decide_what_a_full_pass_after_every_event_decides():
    run_state_machine_as_test(
        TwinClusters,
        settings=settings(
            max_examples=20,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# --- the shortcuts are taken where they are certain ---------------------------------------


@pytest.fixture
def passes():
    seen: list[PassResult] = []

    @receiver(pass_finished, weak=False)
    def record(sender, result: PassResult, **kwargs) -> None:
        seen.append(result)

    yield seen
    pass_finished.disconnect(record)


def _spec(cpu: int, priority: int = 0) -> DeploymentSpec:
    return DeploymentSpec(
        name="e", image=IMAGE, resources=Resources(cpu, 128, 0), priority=priority
    )


def test_an_arrival_that_fits_starts_without_a_pass_over_the_queue(passes):
    cluster = ClusterFactory(capacity_cpu=4000, capacity_gpu=0, policy="pack")
    RunningDeploymentFactory(cluster=cluster, cpu=3000, priority=9, preemptible=False)
    waiting = DeploymentFactory.create_batch(
        5, cluster=cluster, cpu=2000, status_reason="needs 2 CPU, 1 free"
    )
    actor = UserFactory()

    event = deployment_create(actor=actor, cluster=cluster, spec=_spec(1000, priority=9))

    event.refresh_from_db()
    assert event.status == Status.RUNNING
    # A placement, not a pass: the one start, and the queue's reasons untouched.
    assert [(p.started, p.waiting) for p in passes] == [([event.pk], 0)]
    reasons = Deployment.objects.filter(pk__in=[d.pk for d in waiting])
    assert set(reasons.values_list("status_reason", flat=True)) == {"needs 2 CPU, 1 free"}

    deployment_act(actor=actor, deployment_id=event.pk, action=Action.COMPLETE)
    # Nothing waiting could use the freed CPU: no pass at all; nor for one more that
    # cannot fit.
    late = deployment_create(actor=actor, cluster=cluster, spec=_spec(2000))

    assert len(passes) == 1
    late.refresh_from_db()
    assert late.status == Status.QUEUED
    plan = _full_plan(cluster)
    assert not plan.changed
    # Its wait is explained as a pass would explain it.
    [entry] = [e for e in plan.queue if e.deployment_id == late.pk]
    assert late.status_reason == entry.reason


def test_an_arrival_behind_a_reservation_or_a_startable_queue_gets_a_pass(passes):
    cluster = ClusterFactory(capacity_cpu=4000, capacity_gpu=0, starvation_after_seconds=0)
    RunningDeploymentFactory(cluster=cluster, cpu=3000, priority=0)  # preemptible
    DeploymentFactory(cluster=cluster, cpu=2000, priority=5)  # could preempt it

    created = deployment_create(actor=UserFactory(), cluster=cluster, spec=_spec(1000))

    # The full pass ran and decided for the whole queue.
    assert passes and passes[0].waiting >= 1
    assert not _full_plan(cluster).changed
    created.refresh_from_db()
    assert created.status in (Status.QUEUED, Status.RUNNING)
