"""16 concurrent clients, 2 real RQ workers, a real dockerd: what really runs is sampled
on the engine the whole time and never exceeds the cluster's capacity."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from django.db import connection

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import FINISHED, Deployment, Status
from deployments.services import (
    Action,
    DeploymentSpec,
    InvalidTransition,
    deployment_act,
    deployment_create,
)
from hypervisor.resources import Resources
from runtime.labels import INSTALLATION_LABEL
from runtime.services import RuntimeSpec, runtime_add
from runtime.tests.engines import TEST_IMAGE
from scheduler.runtimeaudit import audit_runtimes

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.rq,
    pytest.mark.engine,
    pytest.mark.slow,
]

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 16
PER_CLIENT = 2
SLOTS = 4  # the cluster holds 4 deployments of 500 millicores


def _start_worker(installation: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "HYPERVISOR_INSTALLATION_ID": installation,
        "RUNTIME_STOP_GRACE_SECONDS": "1",
        "RUNTIME_WATCH_SECONDS": "0.5",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "--with-scheduler", "default"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _client(cluster: Cluster, seed: int, errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    actor = UserFactory()
    mine = []
    try:
        for i in range(PER_CLIENT):
            spec = DeploymentSpec(
                name=f"c{seed}-{i}",
                image=TEST_IMAGE,
                resources=Resources(500, 32, 0),
                priority=rng.randint(0, 3),
                command=["sleep", str(rng.choice([4, 5, 6]))],
            )
            mine.append(deployment_create(actor=actor, cluster=cluster, spec=spec))
            time.sleep(rng.random() * 0.5)
        if rng.random() < 0.3:
            with contextlib.suppress(InvalidTransition):  # it may have ended first
                deployment_act(actor=actor, deployment_id=mine[0].pk, action=Action.CANCEL)
    except BaseException as error:  # reported by the test
        errors.append(error)
    finally:
        connection.close()


def test_what_runs_never_exceeds_capacity(docker_engine, settings):
    installation = f"conc{uuid.uuid4().hex[:6]}"
    settings.HYPERVISOR_INSTALLATION_ID = installation
    django_rq.get_queue("default").empty()
    runtime = runtime_add(
        spec=RuntimeSpec(
            name="conc",
            kind="docker",
            endpoint=docker_engine.endpoint,
            options={"network": "none", "pull": "never"},
            credentials={},
        )
    )
    cluster = ClusterFactory(capacity_cpu=SLOTS * 500, capacity_ram_mb=4096, capacity_gpu=0)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
    cluster.refresh_from_db()
    workers = [_start_worker(installation) for _ in range(2)]
    client = docker_engine.client()
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        label = f"{INSTALLATION_LABEL}={installation}"
        while not done.is_set():
            running = client.containers.list(filters={"label": label, "status": "running"})
            samples.append(len(running))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    errors: list[BaseException] = []
    try:
        threads = [
            threading.Thread(target=_client, args=(cluster, seed, errors))
            for seed in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            left = Deployment.objects.filter(cluster=cluster).exclude(status__in=FINISHED)
            if not left.exists():
                break
            time.sleep(0.5)
    finally:
        done.set()
        sampler.join()
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)
    statuses = list(
        Deployment.objects.filter(cluster=cluster).values_list("status", "status_reason")
    )
    assert len(statuses) == CLIENTS * PER_CLIENT
    assert all(status in FINISHED for status, _ in statuses), statuses
    assert not [reason for _, reason in statuses if "lost" in reason]
    completed = [s for s, _ in statuses if s == Status.COMPLETED]
    assert len(completed) >= CLIENTS * PER_CLIENT * 0.6  # most ran to their end
    assert samples and max(samples) <= SLOTS, max(samples)
    assert max(samples) == SLOTS  # it was really full at some point
    assert audit_runtimes() == []
    assert (
        client.containers.list(all=True, filters={"label": f"{INSTALLATION_LABEL}={installation}"})
        == []
    )
