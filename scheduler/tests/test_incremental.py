"""The shortcuts of scheduler/incremental.py decide exactly what the full planner would.

A hypothesis state machine plays one random stream of events on two twin clusters of
PostgreSQL: the services (creates placed at once when certain, changes after which
nothing could start decided without a pass, the others planned over the deployments that
could use the room) on one, and on the other the reference: the same change written
plainly, then a full pass after every event. Both policies, priorities 0 to 3, preemptible
or not, and starvation limits of none, 0 s (everything waiting reserves) and an hour
(the deployments the stream "ages" reserve). After each event both hold the same
deployments in the same statuses with the same preemption counts, and the full planner
has nothing left to do on the first. Which way each event was decided is counted, and
the run must have taken every one.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import F, Q
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
from hypervisor.tests.hypothesis_profiles import scaled
from scheduler import incremental
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
AGE = timedelta(hours=2)  # past the hour-long limit: the deployment reserves
FINAL = {
    Action.COMPLETE: Status.COMPLETED,
    Action.FAIL: Status.FAILED,
    Action.CANCEL: Status.CANCELLED,
}


class TwinClusters(RuleBasedStateMachine):
    # How each event on the services' cluster was decided, over the whole run: "none" (no
    # plan at all: nothing could start), or PassResult.path of what ran.
    paths: Counter = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.actor = UserFactory()
        self.pairs: list[tuple[int, int]] = []  # (on the services' cluster, on the reference)
        self.seen: list[PassResult] = []
        pass_finished.connect(self._record, weak=False, dispatch_uid="twin-clusters")

    def _record(self, sender, result: PassResult, **kwargs) -> None:
        if result.cluster_id == self.cluster.pk:
            self.seen.append(result)

    def _count(self, before: int) -> None:
        results = self.seen[before:]
        TwinClusters.paths[results[0].path if results else "none"] += 1

    def teardown(self) -> None:
        pass_finished.disconnect(dispatch_uid="twin-clusters")

    @initialize(
        policy=st.sampled_from(["fifo", "pack"]), starvation=st.sampled_from([None, 0, 3600])
    )
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
        before = len(self.seen)
        mine = deployment_create(actor=self.actor, cluster=self.cluster, spec=spec)
        self._count(before)
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
        allowed = {Status.RUNNING} if action != Action.CANCEL else {Status.QUEUED, Status.RUNNING}
        statuses = dict(
            Deployment.objects.filter(cluster=self.reference).values_list("pk", "status")
        )
        eligible = [(mine, theirs) for mine, theirs in self.pairs if statuses[theirs] in allowed]
        if not eligible:
            return
        mine, theirs = data.draw(st.sampled_from(eligible))
        before = len(self.seen)
        deployment_act(actor=self.actor, deployment_id=mine, action=action)
        self._count(before)
        Deployment.objects.filter(pk=theirs).update(
            status=FINAL[action], finished_at=timezone.now()
        )
        schedule_cluster(cluster_id=self.reference.pk)  # recomputes the allocation too

    @rule(data=st.data())
    def age(self, data: st.DataObject) -> None:
        """Time passes for one queued deployment: it has waited two hours. Nothing asks
        for a pass when time passes (the safety net's pass finds the new reservations):
        both twins get one."""
        queued = [
            (mine, theirs)
            for mine, theirs in self.pairs
            if Deployment.objects.filter(pk=theirs, status=Status.QUEUED).exists()
        ]
        if not queued:
            return
        pair = data.draw(st.sampled_from(queued))
        Deployment.objects.filter(pk__in=pair).update(queued_at=F("queued_at") - AGE)
        schedule_cluster(cluster_id=self.cluster.pk)
        schedule_cluster(cluster_id=self.reference.pk)

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
    TwinClusters.paths.clear()
    run_state_machine_as_test(
        TwinClusters,
        settings=settings(
            max_examples=scaled(30),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    print(f"events by the way they were decided: {dict(TwinClusters.paths)}")
    # The run exercised every way: no plan, an arrival placed alone, a plan over the
    # deployments that could use the room, and the full pass where none applies.
    assert set(TwinClusters.paths) == {"none", "arrival", "bounded", "pass"}


# --- the shortcuts are taken where they are certain ---------------------------------------


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
    assert [p.path for p in passes] == ["pass"]
    assert not _full_plan(cluster).changed
    created.refresh_from_db()
    assert created.status in (Status.QUEUED, Status.RUNNING)


def test_a_completion_reads_only_the_deployments_that_could_use_the_room(passes):
    cluster = ClusterFactory(capacity_cpu=4000, capacity_gpu=0, policy="fifo")
    RunningDeploymentFactory(cluster=cluster, cpu=1000, preemptible=False)
    done = RunningDeploymentFactory(cluster=cluster, cpu=2000, preemptible=False)
    far = DeploymentFactory.create_batch(
        30, cluster=cluster, cpu=4000, status_reason="needs 4 CPU, 1 free"
    )
    near = DeploymentFactory(cluster=cluster, cpu=3000, status_reason="needs 3 CPU, 1 free")

    deployment_act(actor=UserFactory(), deployment_id=done.pk, action=Action.COMPLETE)

    [result] = passes
    assert (result.path, result.started) == ("bounded", [near.pk])
    assert not _full_plan(cluster).changed
    # The 30 that could not use the room were not read: their reasons wait for a refresh.
    stale = Deployment.objects.filter(pk__in=[d.pk for d in far])
    assert set(stale.values_list("status_reason", flat=True)) == {"needs 4 CPU, 1 free"}


def test_a_completion_honours_a_reservation_held_by_a_deployment_out_of_reach(passes):
    cluster = ClusterFactory(capacity_cpu=4000, capacity_gpu=0, starvation_after_seconds=3600)
    done = RunningDeploymentFactory(cluster=cluster, cpu=2000, preemptible=False)
    RunningDeploymentFactory(cluster=cluster, cpu=1000, preemptible=False)
    # Waited two hours: it reserves the free room, though it can never fit beside the
    # 1 CPU that stays.
    starving = DeploymentFactory(
        cluster=cluster, cpu=4000, queued_at=timezone.now() - timedelta(hours=2)
    )
    held = DeploymentFactory(cluster=cluster, cpu=1000)  # in reach once `done` completes

    deployment_act(actor=UserFactory(), deployment_id=done.pk, action=Action.COMPLETE)

    assert [(p.path, p.started) for p in passes] == [("bounded", [])]
    held.refresh_from_db()
    assert held.status == Status.QUEUED
    assert f"reserved for deployment {starving.pk}" in held.status_reason
    assert not _full_plan(cluster).changed


def test_more_deployments_that_could_use_the_room_than_the_bound_get_a_pass(passes, monkeypatch):
    monkeypatch.setattr(incremental, "BOUNDED_LIMIT", 2)
    cluster = ClusterFactory(capacity_cpu=4000, capacity_gpu=0)
    done = RunningDeploymentFactory(cluster=cluster, cpu=4000, preemptible=False)
    DeploymentFactory.create_batch(3, cluster=cluster, cpu=1000)

    deployment_act(actor=UserFactory(), deployment_id=done.pk, action=Action.COMPLETE)

    assert [(p.path, len(p.started)) for p in passes] == [("pass", 3)]
