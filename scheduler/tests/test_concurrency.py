"""Many clients at once on one small cluster, on PostgreSQL with real threads.

Each thread has its own database connection and acts through the services, exactly as
concurrent web processes would; passes run in-process after each commit. A monitor
thread samples the committed running set the whole time.
"""

from __future__ import annotations

import contextlib
import random
import threading

import pytest
from django.db import connection, connections

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
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
from scheduler.services import schedule_cluster
from scheduler.tests.guarantees import capacity_violations, placement_violations

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 10
OPERATIONS_PER_CLIENT = 12


def _client(cluster_id: int, seed: int, errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    actor = UserFactory()
    try:
        for _ in range(OPERATIONS_PER_CLIENT):
            spec = DeploymentSpec(
                name="burst",
                image="registry.example.com/team/job:1",
                resources=Resources(1000, 256, rng.choice((0, 0, 1))),
                priority=rng.choice((0, 0, 5, 9)),
            )
            cluster = Cluster.objects.get(pk=cluster_id)
            deployment_create(actor=actor, cluster=cluster, spec=spec)
            running = list(
                Deployment.objects.filter(cluster_id=cluster_id, status=Status.RUNNING).values_list(
                    "pk", flat=True
                )
            )
            if running and rng.random() < 0.6:
                # Another client may finish it first: the API would answer 409.
                with contextlib.suppress(InvalidTransition):
                    deployment_act(
                        actor=actor,
                        deployment_id=rng.choice(running),
                        action=rng.choice((Action.COMPLETE, Action.FAIL, Action.CANCEL)),
                    )
    except BaseException as error:
        errors.append(error)
    finally:
        connection.close()


def _monitor(cluster_id: int, stop: threading.Event, seen: list) -> None:
    try:
        with connections["default"].cursor() as cursor:
            while not stop.is_set():
                cursor.execute(
                    "SELECT coalesce(sum(cpu),0), coalesce(sum(ram_mb),0), coalesce(sum(gpu),0) "
                    "FROM deployments_deployment WHERE cluster_id = %s AND status = 'running'",
                    [cluster_id],
                )
                seen.append(Resources(*cursor.fetchone()))
    finally:
        connection.close()


def test_concurrent_clients_never_over_allocate():
    capacity = Resources(4000, 4096, 2)
    cluster = ClusterFactory(capacity_cpu=4000, capacity_ram_mb=4096, capacity_gpu=2)
    errors: list[BaseException] = []
    samples: list[Resources] = []
    stop = threading.Event()
    monitor = threading.Thread(target=_monitor, args=(cluster.pk, stop, samples))
    clients = [
        threading.Thread(target=_client, args=(cluster.pk, seed, errors)) for seed in range(CLIENTS)
    ]
    monitor.start()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    stop.set()
    monitor.join()

    assert errors == []
    assert samples, "the monitor saw nothing"
    over = [s for s in samples if not s.fits_in(capacity)]
    assert over == [], f"over-allocated in {len(over)} of {len(samples)} samples, e.g. {over[0]}"
    assert Deployment.objects.filter(cluster=cluster).count() == CLIENTS * OPERATIONS_PER_CLIENT
    schedule_cluster(cluster_id=cluster.pk)
    assert capacity_violations(cluster) == []
    assert placement_violations(cluster) == []
