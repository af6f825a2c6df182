"""The Redis path end to end: a request enqueues a merged pass; a real `rqworker --burst`
process (its own interpreter, its own database connection) runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from django.db import connection

from clusters.tests.factories import ClusterFactory
from scheduler.jobs import take_turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rq]

ROOT = Path(__file__).resolve().parents[2]


def _run_burst_worker() -> subprocess.CompletedProcess:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "rqworker",
            "--burst",
            "--worker-class",
            "scheduler.worker.SchedulerWorker",
            "default",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def empty_queue():
    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


def test_a_queued_answer_becomes_running_after_the_workers_pass(
    owner, organization, as_user, empty_queue
):
    assert settings.USE_RQ
    api = as_user(owner)
    cluster = ClusterFactory(organization=organization, capacity_cpu=2000)
    body = {
        "cluster": cluster.pk,
        "name": "train",
        "image": "python:3.11",
        "resources": {"cpu": 1, "ram_mb": 64, "gpu": 0},
    }
    created = [
        api.post("/api/v1/deployments", {**body, "name": f"t{i}"}, format="json") for i in range(3)
    ]
    assert [r.status_code for r in created] == [201, 201, 201]
    # Nothing has run the pass yet: the answers say queued, and the three requests
    # for the same cluster merged into one job.
    assert [r.json()["status"] for r in created] == ["queued"] * 3
    assert empty_queue.count == 1

    worker = _run_burst_worker()
    assert worker.returncode == 0, worker.stderr[-2000:]

    statuses = [api.get(f"/api/v1/deployments/{r.json()['id']}").json()["status"] for r in created]
    assert sorted(statuses) == ["queued", "running", "running"]
    assert empty_queue.count == 0


def test_a_cluster_gets_at_most_one_pass_per_merge_window(settings):
    settings.SCHEDULER_MERGE_WINDOW_MS = 400
    # A cluster with no recent pass goes at once: an idle stack starts work promptly.
    assert take_turn(1) < 0.1
    # The next pass over it waits out the rest of the window; requests meanwhile merge.
    assert 0.2 < take_turn(1) < 1.0
    # Other clusters are not held up by it.
    assert take_turn(2) < 0.1
