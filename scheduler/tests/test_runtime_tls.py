"""Docker over TCP with TLS client certificates: a second private dockerd that listens on
127.0.0.1 with `--tlsverify` (runtime/tests/engines.py), certificates made by openssl in
the test's temporary directory, the runtime registered with `manage.py runtime add`."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import CommandError, call_command

from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import DeploymentLog, Status
from runtime.gateway import forget_breakers
from runtime.models import Health, Runtime
from runtime.tests.engines import DockerEngine, make_tls_files
from scheduler.tests.test_runtime_lifecycle import settle, submit

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.RUNTIME_RETRY_WAIT_SECONDS = 0.01
    settings.RUNTIME_RETRY_ATTEMPTS = 2
    settings.HYPERVISOR_INSTALLATION_ID = f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def tls_engine(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dockerd-tls")
    engine = DockerEngine(directory / "engine", tls=make_tls_files(directory / "certs"))
    engine.directory.mkdir()
    engine.start()
    try:
        engine.build_test_image()
        yield engine
    finally:
        engine.stop()


def add_runtime(engine: DockerEngine, *tls: str) -> Runtime:
    name = f"tls-{uuid.uuid4().hex[:6]}"
    call_command(
        "runtime", "add", name, "--kind", "docker", "--endpoint", engine.tcp_endpoint,
        "--option", "network=none", "--option", "pull=never", *tls,
    )  # fmt: skip
    return Runtime.objects.get(name=name)


def tls_arguments(engine: DockerEngine, *, client: bool = True) -> list[str]:
    files = engine.tls
    arguments = ["--tls-ca", str(files.ca)]
    if client:
        arguments += ["--tls-cert", str(files.client_cert), "--tls-key", str(files.client_key)]
    return arguments


def cluster_on(runtime: Runtime) -> Cluster:
    cluster = ClusterFactory(capacity_cpu=2000, capacity_ram_mb=512, capacity_gpu=0)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
    cluster.refresh_from_db()
    return cluster


def test_a_deployment_runs_to_completed_over_tls(tls_engine, capsys):
    assert tls_engine.tcp_endpoint.startswith("tcp://127.0.0.1:")
    runtime = add_runtime(tls_engine, *tls_arguments(tls_engine))
    assert set(runtime.credentials) == {"ca_cert", "client_cert", "client_key"}
    call_command("runtime", "check", runtime.name)
    assert capsys.readouterr().out.endswith(f"{runtime.name}: ok\n")
    deployment = submit(cluster_on(runtime), ["sh", "-c", "echo hello over tls; sleep 1"])
    deployment.refresh_from_db()
    assert deployment.status == Status.RUNNING, deployment.status_reason
    deployment = settle(deployment, {Status.COMPLETED, Status.FAILED})
    assert (deployment.status, deployment.exit_code) == (Status.COMPLETED, 0)
    assert DeploymentLog.objects.get(deployment=deployment).lines == ["hello over tls"]


def test_without_the_client_certificate_the_engine_refuses_and_nothing_is_lost(tls_engine):
    runtime = add_runtime(tls_engine, *tls_arguments(tls_engine, client=False))
    with pytest.raises(CommandError, match="unreachable"):
        call_command("runtime", "check", runtime.name)
    runtime.refresh_from_db()
    assert runtime.status == Health.UNREACHABLE
    # The engine ends the handshake: it asks for a certificate and gets none.
    assert "SSL" in runtime.status_detail or "certificate" in runtime.status_detail
    cluster = cluster_on(runtime)
    deployment = submit(cluster, ["sh", "-c", "echo finally"])
    deployment.refresh_from_db()
    assert deployment.status == Status.QUEUED
    assert f"runtime {runtime.name} is unreachable since" in deployment.status_reason
    assert tls_engine.client().containers.list(all=True) == []
    # Given the client certificate, the same runtime runs it: it waited, it was not lost.
    credentials = {
        "ca_cert": tls_engine.tls.ca.read_text(),
        "client_cert": tls_engine.tls.client_cert.read_text(),
        "client_key": tls_engine.tls.client_key.read_text(),
    }
    Runtime.objects.filter(pk=runtime.pk).update(credentials=credentials)
    forget_breakers()
    # The first call that reaches it again runs passes over its clusters.
    call_command("runtime", "check", runtime.name)
    deployment = settle(deployment, {Status.COMPLETED, Status.FAILED})
    assert (deployment.status, deployment.exit_code) == (Status.COMPLETED, 0)


def test_a_client_certificate_without_its_key_is_refused(tls_engine):
    with pytest.raises(CommandError, match="A client certificate and its key go together"):
        add_runtime(tls_engine, "--tls-cert", str(tls_engine.tls.client_cert))
