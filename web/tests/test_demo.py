"""`manage.py demo`: real scheduler outcomes, every role, and a second run is harmless."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from deployments.models import Deployment, DeploymentEvent, Status
from deployments.workloads import workload_name
from orgs.models import Membership, Organization
from runtime.models import Runtime
from web.management.commands.demo import ORGANIZATION, PASSWORD, USERS

pytestmark = pytest.mark.django_db(transaction=True)


def run_demo(**options) -> str:
    out = StringIO()
    call_command("demo", stdout=out, **options)
    return out.getvalue()


def test_demo_builds_a_lived_in_organization():
    output = run_demo(force=True)
    organization = Organization.objects.get(name=ORGANIZATION)
    roles = dict(
        Membership.objects.filter(organization=organization).values_list(
            "user__username", "group__name"
        )
    )
    assert roles == {username: role.value for role, username in USERS.items()}
    for username in USERS.values():
        assert authenticate(username=username, password=PASSWORD) is not None
        assert username in output
    assert PASSWORD in output and "/login/" in output

    deployments = Deployment.objects.filter(cluster__organization=organization)
    # Every status but the two a runtime holds (the demo's clusters are manual: there
    # `starting` and `stopping` pass at once).
    reachable = set(Status.values) - {Status.STARTING, Status.STOPPING}
    assert set(deployments.values_list("status", flat=True)) == reachable
    preempted = deployments.get(preemption_count__gt=0)
    assert preempted.status == Status.QUEUED
    assert DeploymentEvent.objects.filter(
        deployment=preempted, reason__startswith="preempted by deployment"
    ).exists()
    # The scheduler's invariant holds on every cluster it filled.
    for cluster in organization.clusters.all():
        running = deployments.filter(cluster=cluster, status=Status.RUNNING)
        assert sum(d.cpu for d in running) == cluster.allocated_cpu <= cluster.capacity_cpu


def test_a_second_run_changes_nothing_and_says_how_to_sign_in():
    run_demo(force=True)
    count = Deployment.objects.count()
    output = run_demo(force=True)
    assert "already there; nothing changed" in output and PASSWORD in output
    assert Deployment.objects.count() == count
    assert Organization.objects.filter(name=ORGANIZATION).count() == 1


def test_refuses_with_debug_off_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        run_demo()
    assert not Organization.objects.filter(name=ORGANIZATION).exists()


def test_without_docker_the_clusters_stay_manual(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    output = run_demo(force=True)
    assert "No Docker engine answers" in output
    assert not Runtime.objects.exists()


@pytest.mark.engine
def test_with_docker_a_cluster_runs_on_it(monkeypatch, docker_engine):
    monkeypatch.setenv("DOCKER_HOST", docker_engine.endpoint)
    output = run_demo(force=True)
    assert f"Registered the Docker engine at {docker_engine.endpoint}" in output
    hello = Deployment.objects.get(name="hello-docker")
    try:
        assert hello.cluster.runtime.name == "local-docker"
        assert hello.status == Status.RUNNING, hello.status_reason
        assert docker_engine.client().containers.get(workload_name(hello.pk)).status == "running"
    finally:
        docker_engine.client().containers.get(workload_name(hello.pk)).remove(force=True)
