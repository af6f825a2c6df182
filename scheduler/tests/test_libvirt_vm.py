"""Real VMs: deployments on a libvirt runtime that boot tiny guests under QEMU (TCG)
through a private libvirtd (devtools/vmhost.py), in-process (embedded).

Marker `vm`: excluded from `make test` (pyproject's `-m 'not vm'`: a run boots three VMs,
about a minute on an idle machine); run by hand with `make vm-test`, which installs what
it needs (devtools/scripts/ensure-libvirt-vm). The figures it prints are recorded in
docs/benchmarks.md. Exits are noticed by reconciliation, called here where the watcher
would call it.
"""

from __future__ import annotations

import time
import uuid

import pytest

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, DeploymentLog, Status
from deployments.services import Action, DeploymentSpec, deployment_act, deployment_create
from deployments.workloads import workload_name
from devtools.vmhost import HELLO, POOL, READY, VmHost, missing_requirements
from hypervisor.resources import Resources
from runtime.backends.base import Phase
from runtime.gateway import gateway_for
from runtime.models import Runtime
from runtime.services import RuntimeSpec, runtime_add
from scheduler.tests.test_runtime_lifecycle import settle

pytestmark = [pytest.mark.vm, pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]
BOOT_SECONDS = 300  # a guest boots in ~10 s under TCG when idle; far slower on a busy host


@pytest.fixture(scope="module")
def vm_host():
    missing = missing_requirements()
    if missing:
        pytest.fail(
            f"the VM test needs {', '.join(missing)}: run devtools/scripts/ensure-libvirt-vm "
            "or `make vm-test`, which installs them"
        )
    host = VmHost.create()
    try:
        host.start()
        yield host
    finally:
        host.stop()


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.RUNTIME_RETRY_WAIT_SECONDS = 0.01
    settings.RUNTIME_RETRY_ATTEMPTS = 2
    settings.HYPERVISOR_INSTALLATION_ID = f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def runtime(vm_host) -> Runtime:
    return runtime_add(
        spec=RuntimeSpec(
            name=f"vm-{uuid.uuid4().hex[:6]}",
            kind="libvirt",
            endpoint=vm_host.uri,
            options={"pool": POOL, "domain_type": "qemu", "console_dir": str(vm_host.console_dir)},
            credentials={},
        )
    )


@pytest.fixture
def cluster(runtime) -> Cluster:
    cluster = ClusterFactory(capacity_cpu=1000, capacity_ram_mb=256, capacity_gpu=0)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
    cluster.refresh_from_db()
    return cluster


def submit(cluster: Cluster, image: str) -> Deployment:
    spec = DeploymentSpec(name="vm", image=image, resources=Resources(1000, 256, 0), command=None)
    deployment = deployment_create(actor=UserFactory(), cluster=cluster, spec=spec)
    deployment.refresh_from_db()
    return deployment


def boot(cluster: Cluster, vm_host: VmHost, image: str, line: str) -> tuple[Deployment, dict]:
    """Create a deployment of `image` and wait until its guest writes `line`; the times."""
    began = time.monotonic()
    deployment = submit(cluster, image)
    running = time.monotonic() - began
    assert deployment.status == Status.RUNNING  # QEMU runs: the engine confirmed the start
    name = workload_name(deployment.pk)
    deadline = time.monotonic() + BOOT_SECONDS
    while line not in vm_host.console(name):
        assert time.monotonic() < deadline, f"no {line!r} on the console: {vm_host.console(name)}"
        time.sleep(0.2)
    booted = time.monotonic() - began
    return deployment, {"create -> running": running, f"create -> {line!r}": booted}


def cancel(deployment: Deployment) -> Deployment:
    deployment_act(actor=deployment.created_by, deployment_id=deployment.pk, action=Action.CANCEL)
    deployment.refresh_from_db()
    return deployment


def report(capsys, figures: dict[str, float]) -> None:
    with capsys.disabled():
        print("\n  " + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in figures.items()))


def assert_gone(runtime: Runtime, deployment: Deployment) -> None:
    """The domain and its disk overlay were removed with the deployment's end."""
    backend = gateway_for(runtime).backend
    assert backend.state(workload_name(deployment.pk)).phase == Phase.MISSING
    pool = backend._conn().storagePoolLookupByName(POOL)
    assert f"{workload_name(deployment.pk)}.qcow2" not in pool.listVolumes()


def test_a_vm_boots_runs_and_its_power_off_completes_it(cluster, runtime, vm_host, capsys):
    began = time.monotonic()
    deployment, figures = boot(cluster, vm_host, "hv-test/vm-exit:1", HELLO)
    deployment = settle(deployment, {Status.COMPLETED, Status.FAILED}, timeout=BOOT_SECONDS)
    figures["create -> completed (the guest powered off; reconciled)"] = time.monotonic() - began
    assert (deployment.status, deployment.exit_code) == (Status.COMPLETED, 0)
    assert deployment.status_reason == "exited with code 0"
    assert HELLO in DeploymentLog.objects.get(deployment=deployment).lines
    assert_gone(runtime, deployment)
    report(capsys, figures)


def test_a_cancel_shuts_a_vm_down_within_the_grace(cluster, runtime, vm_host, capsys, settings):
    settings.RUNTIME_STOP_GRACE_SECONDS = 60
    deployment, figures = boot(cluster, vm_host, "hv-test/vm-graceful:1", READY)
    began = time.monotonic()
    deployment = cancel(deployment)
    stopped = time.monotonic() - began
    assert stopped < 60  # the guest powered off on ACPI: no kill
    assert (deployment.status, deployment.exit_code) == (Status.CANCELLED, 0)
    assert deployment.events.last().reason == "stopped by the runtime"
    lines = DeploymentLog.objects.get(deployment=deployment).lines
    assert "hv: ACPI power button pressed" in lines
    assert_gone(runtime, deployment)
    report(capsys, {**figures, "cancel -> cancelled (ACPI shutdown obeyed)": stopped})


def test_a_cancel_kills_a_vm_that_ignores_the_shutdown(cluster, runtime, vm_host, capsys, settings):
    settings.RUNTIME_STOP_GRACE_SECONDS = 3
    deployment, figures = boot(cluster, vm_host, "hv-test/vm-stubborn:1", READY)
    began = time.monotonic()
    deployment = cancel(deployment)
    stopped = time.monotonic() - began
    assert stopped >= 3  # the grace period, then the kill
    assert (deployment.status, deployment.exit_code) == (Status.CANCELLED, 137)
    assert deployment.events.last().reason == "killed by the runtime after the 3 s grace period"
    assert_gone(runtime, deployment)
    report(capsys, {**figures, "cancel -> cancelled (destroyed after a 3 s grace)": stopped})
