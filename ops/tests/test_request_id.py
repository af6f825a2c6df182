"""Request ids: echoed or made, stamped on JSON log lines, and carried into RQ jobs."""

import json
import logging

import django_rq
import pytest

from clusters.tests.factories import ClusterFactory
from deployments.tests.factories import RunningDeploymentFactory
from hypervisor.requestid import bound_request_id
from hypervisor.tests.workers import run_burst_worker
from ops.logformat import JsonFormatter


@pytest.mark.django_db
def test_a_sane_client_id_is_echoed(anon):
    response = anon.get("/healthz", HTTP_X_REQUEST_ID="trace-42.a:b")
    assert response["X-Request-ID"] == "trace-42.a:b"


@pytest.mark.django_db
def test_a_missing_or_unsafe_id_is_replaced(anon):
    made = anon.get("/healthz")["X-Request-ID"]
    assert len(made) == 32
    forged = anon.get("/healthz", HTTP_X_REQUEST_ID='x"\n{"level": "CRITICAL"}')
    assert forged["X-Request-ID"] != 'x"\n{"level": "CRITICAL"}'
    assert len(forged["X-Request-ID"]) == 32


def test_the_formatter_writes_one_json_object_with_the_request_id():
    record = logging.LogRecord("hv.test", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.cluster_id = 7
    with bound_request_id("req-1"):
        line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "hello you"
    assert entry["level"] == "WARNING"
    assert entry["request_id"] == "req-1"
    assert entry["cluster_id"] == 7
    assert "\n" not in line
    assert "request_id" not in json.loads(JsonFormatter().format(record))


@pytest.mark.rq
@pytest.mark.django_db(transaction=True)
def test_the_id_travels_with_the_job_into_the_workers_logs(owner, organization, as_user):
    queue = django_rq.get_queue("default")
    queue.empty()
    cluster = ClusterFactory(organization=organization)
    # Bigger than the cluster's free room: it is not placed at once, a pass decides.
    RunningDeploymentFactory(cluster=cluster, cpu=cluster.capacity_cpu, priority=0)
    body = {
        "cluster": cluster.pk,
        "name": "traced",
        "image": "python:3.11",
        "resources": {"cpu": 1, "ram_mb": 64, "gpu": 0},
        "priority": 1,
    }
    response = as_user(owner).post(
        "/api/v1/deployments", body, format="json", HTTP_X_REQUEST_ID="trace-into-job"
    )
    assert response.status_code == 201
    [job] = queue.get_jobs()
    assert job.meta["request_id"] == "trace-into-job"

    worker = run_burst_worker(LOG_FORMAT="json")
    assert worker.returncode == 0, worker.stderr
    lines = [json.loads(x) for x in worker.stderr.splitlines() if x.startswith("{")]
    passes = [x for x in lines if x.get("message") == "scheduling pass"]
    assert passes and all(x["request_id"] == "trace-into-job" for x in passes)
    queue.empty()
