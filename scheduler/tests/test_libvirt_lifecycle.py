"""Deployments on a libvirt runtime: the stop's two branches, through the lifecycle, on
libvirt's test driver (in-process; its state lives in the gateway's own connection).

The test driver's guests obey an ACPI shutdown at once; a domain whose `on_poweroff` is
`restart` turns it into a reboot and so ignores it, as a guest without an ACPI handler
would. A real guest under QEMU is `test_libvirt_vm.py` (marker `vm`, run by hand).
"""

from __future__ import annotations

import time
import uuid

import pytest

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, Status
from deployments.services import Action, DeploymentSpec, deployment_act, deployment_create
from deployments.workloads import workload_name, workload_spec
from hypervisor.resources import Resources
from runtime.backends.base import Phase
from runtime.gateway import gateway_for
from runtime.models import Runtime
from runtime.services import RuntimeSpec, runtime_add
from runtime.tests.test_libvirt_backend import define_stubborn

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.RUNTIME_STOP_GRACE_SECONDS = 1
    settings.RUNTIME_RETRY_WAIT_SECONDS = 0.01
    settings.RUNTIME_RETRY_ATTEMPTS = 2
    settings.HYPERVISOR_INSTALLATION_ID = f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def runtime() -> Runtime:
    return runtime_add(
        spec=RuntimeSpec(
            name=f"lv-{uuid.uuid4().hex[:6]}",
            kind="libvirt",
            endpoint="test:///default",
            options={"disk": "none"},
            credentials={},
        )
    )


@pytest.fixture
def cluster(runtime) -> Cluster:
    """Room for one deployment at a time."""
    cluster = ClusterFactory(capacity_cpu=1000, capacity_ram_mb=256, capacity_gpu=0)
    Cluster.objects.filter(pk=cluster.pk).update(runtime=runtime)
    cluster.refresh_from_db()
    return cluster


def submit(cluster: Cluster) -> Deployment:
    spec = DeploymentSpec(
        name="vm", image="team/vm:1", resources=Resources(1000, 256, 0), command=None
    )
    deployment = deployment_create(actor=UserFactory(), cluster=cluster, spec=spec)
    deployment.refresh_from_db()
    return deployment


def cancel(deployment: Deployment) -> tuple[Deployment, float]:
    began = time.monotonic()
    deployment_act(actor=deployment.created_by, deployment_id=deployment.pk, action=Action.CANCEL)
    took = time.monotonic() - began
    deployment.refresh_from_db()
    return deployment, took


def test_a_graceful_stop_and_a_kill_after_the_grace_are_recorded(cluster, runtime):
    backend = gateway_for(runtime).backend
    graceful = submit(cluster)
    assert graceful.status == Status.RUNNING
    stubborn = submit(cluster)
    assert stubborn.status == Status.QUEUED  # no room until the first one stops
    define_stubborn(backend, workload_spec(stubborn))

    graceful, took = cancel(graceful)
    assert took < 30  # it powered off: nobody waited for the grace
    assert (graceful.status, graceful.exit_code) == (Status.CANCELLED, 0)
    assert graceful.events.last().reason == "stopped by the runtime"
    # Its room went to the second, which booted the domain defined above.
    stubborn.refresh_from_db()
    assert stubborn.status == Status.RUNNING
    assert backend.state(workload_name(stubborn.pk)).phase == Phase.RUNNING

    stubborn, took = cancel(stubborn)
    assert took >= 1  # the grace period, then the kill
    assert (stubborn.status, stubborn.exit_code) == (Status.CANCELLED, 137)
    assert stubborn.events.last().reason == "killed by the runtime after the 1 s grace period"
    for deployment in (graceful, stubborn):
        assert backend.state(workload_name(deployment.pk)).phase == Phase.MISSING
    cluster.refresh_from_db()
    assert cluster.allocated == Resources(0, 0, 0)
