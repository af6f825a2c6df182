"""Dependents across two clusters while both clusters are under concurrent load.

Threads (each with its own connection) create chains whose steps alternate between
the clusters and finish work at random. Afterwards, with no manual pass: nothing waits
that should have moved (no lost trigger), no guarantee is broken, and no transaction
ever hit a deadlock or a lock timeout (the retry helper would have logged it).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, Status
from deployments.services import (
    Action,
    Condition,
    DependencySpec,
    InvalidTransition,
    deployment_act,
    deployment_create,
)
from deployments.tests.test_dependencies import dependency_state_violations, spec
from orgs.tests.factories import OrganizationFactory
from scheduler.tests.guarantees import capacity_violations, placement_violations

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
STEPS = 10


def _worker(cluster_ids: list[int], seed: int, errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    actor = UserFactory()
    previous = None
    try:
        for step in range(STEPS):
            cluster = Cluster.objects.get(pk=cluster_ids[step % 2])
            depends = ()
            if previous is not None:
                depends = (DependencySpec(previous, rng.choice(list(Condition))),)
            try:
                previous = deployment_create(
                    actor=actor, cluster=cluster, spec=spec(*depends, priority=rng.randint(0, 3))
                ).pk
            except ValidationError as error:  # an already impossible condition: a fair 400
                assert "can never be met" in str(error), error
                previous = None
            running = list(
                Deployment.objects.filter(
                    cluster_id__in=cluster_ids, status=Status.RUNNING
                ).values_list("pk", flat=True)
            )
            if running:
                with contextlib.suppress(InvalidTransition):
                    deployment_act(
                        actor=actor,
                        deployment_id=rng.choice(running),
                        action=rng.choice((Action.COMPLETE, Action.FAIL, Action.CANCEL)),
                    )
    except BaseException as error:  # reported by the test
        errors.append(error)
    finally:
        connection.close()


def test_cross_cluster_dependents_under_load(caplog):
    organization = OrganizationFactory()
    clusters = [ClusterFactory(organization=organization, capacity_cpu=3000) for _ in range(2)]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_worker, args=([c.pk for c in clusters], seed, errors))
        for seed in range(THREADS)
    ]
    with caplog.at_level(logging.WARNING, logger="hypervisor.contention"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert [r.getMessage() for r in caplog.records if r.name == "hypervisor.contention"] == []
    assert dependency_state_violations(organization.pk) == []
    for cluster in clusters:
        assert capacity_violations(cluster) == []
        assert placement_violations(cluster) == []
