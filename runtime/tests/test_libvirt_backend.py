"""The libvirt backend against libvirt's own test driver (`test:///default`, in-process)."""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import libvirt
import pytest

from runtime.backends.base import Phase, RuntimeUnavailable, WorkloadRejected, WorkloadSpec
from runtime.backends.libvirt_domains import (
    LABELS_NS,
    LibvirtBackend,
    unless_stopped,
    volume_name,
)
from runtime.labels import INSTALLATION_LABEL

IMAGE = "registry.example.com:5000/team/vm:1.4"
POOL = "default-pool"  # the test driver's own pool


@pytest.fixture
def installation():
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def backend(installation):
    backend = LibvirtBackend(endpoint="test:///default", options={"pool": POOL}, credentials={})
    pool = backend._conn().storagePoolLookupByName(POOL)
    if volume_name(IMAGE) not in pool.listVolumes():
        pool.createXML(
            f"<volume><name>{volume_name(IMAGE)}</name><capacity unit='M'>64</capacity>"
            "<target><format type='qcow2'/></target></volume>",
            0,
        )
    yield backend
    for workload in backend.list_workloads(labels={INSTALLATION_LABEL: installation}):
        backend.remove(workload.name)


def spec_for(installation: str, **fields) -> WorkloadSpec:
    name = f"hv-{installation}-{uuid.uuid4().hex[:6]}"
    return WorkloadSpec(
        name=name,
        image=fields.pop("image", IMAGE),
        labels={INSTALLATION_LABEL: installation, "io.hypervisor.deployment": "7"},
        **fields,
    )


def test_volume_names_stand_for_image_references():
    assert volume_name(IMAGE) == "registry.example.com_5000_team_vm_1.4"
    assert volume_name("python@sha256:" + "a" * 64) == "python_sha256_" + "a" * 64


def test_a_domain_runs_with_the_requested_vcpus_memory_disk_and_labels(backend, installation):
    spec = spec_for(installation, cpu_millicores=1500, ram_mb=256)
    assert backend.start(spec).phase == Phase.RUNNING
    domain = backend._conn().lookupByName(spec.name)
    tree = ET.fromstring(domain.XMLDesc())
    assert tree.findtext("vcpu") == "2"  # 1.5 cores rounds up to whole vCPUs
    assert int(tree.findtext("memory")) == 256 * 1024  # KiB
    # ACPI: without it a guest hears no shutdown request and cannot power itself off.
    assert tree.find("features/acpi") is not None
    disk = tree.find("devices/disk/source").get("file")
    assert disk.endswith(f"{spec.name}.qcow2")
    overlay = backend._conn().storageVolLookupByPath(disk)
    backing = ET.fromstring(overlay.XMLDesc()).findtext("backingStore/path")
    assert backing.endswith(volume_name(IMAGE))
    [listed] = backend.list_workloads(labels={INSTALLATION_LABEL: installation})
    assert (listed.name, listed.labels, listed.state.phase) == (
        spec.name,
        spec.labels,
        Phase.RUNNING,
    )


def test_start_is_idempotent(backend, installation):
    spec = spec_for(installation)
    backend.start(spec)
    assert backend.start(spec).phase == Phase.RUNNING
    assert len(backend.list_workloads(labels={INSTALLATION_LABEL: installation})) == 1


def test_a_shutdown_is_exit_0_and_a_kill_is_137(backend, installation):
    spec = spec_for(installation)
    backend.start(spec)
    stopped = backend.stop(spec.name, grace_seconds=5)  # the test driver obeys at once
    assert (stopped.phase, stopped.exit_code) == (Phase.EXITED, 0)
    # A restarted start does not boot an ended workload again.
    assert backend.start(spec).phase == Phase.EXITED
    killed = spec_for(installation)
    backend.start(killed)
    backend._conn().lookupByName(killed.name).destroy()
    assert backend.state(killed.name).exit_code == 137


def test_stop_is_graceful_when_the_guest_powers_off(backend, installation):
    spec = spec_for(installation)
    backend.start(spec)
    began = time.monotonic()
    stopped = backend.stop(spec.name, grace_seconds=60)
    # The test driver's guest obeys the ACPI shutdown at once: no wait for the grace.
    assert time.monotonic() - began < 30
    assert (stopped.phase, stopped.exit_code) == (Phase.EXITED, 0)
    status, reason = backend._conn().lookupByName(spec.name).state()
    assert (status, reason) == (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN)


def define_stubborn(backend: LibvirtBackend, spec: WorkloadSpec) -> None:
    """Define the workload's domain before the backend does, as one whose guest ignores
    the ACPI shutdown: `on_poweroff=restart` turns the test driver's power-off into a
    reboot, so the domain stays running until it is destroyed."""
    labels = "".join(
        f"<hv:label name={quoteattr(key)}>{escape(value)}</hv:label>"
        for key, value in spec.labels.items()
    )
    backend._conn().defineXML(
        f"<domain type='test'><name>{spec.name}</name><memory unit='MiB'>64</memory>"
        "<vcpu>1</vcpu><os><type>hvm</type></os><on_poweroff>restart</on_poweroff>"
        f"<metadata><hv:labels xmlns:hv={quoteattr(LABELS_NS)}>{labels}</hv:labels>"
        "</metadata><devices/></domain>"
    )


def test_stop_destroys_a_guest_that_ignores_the_shutdown_after_the_grace(backend, installation):
    spec = spec_for(installation)
    define_stubborn(backend, spec)
    assert backend.start(spec).phase == Phase.RUNNING  # the start boots the defined domain
    domain = backend._conn().lookupByName(spec.name)
    domain.shutdown()
    assert domain.isActive()  # it does ignore a shutdown
    began = time.monotonic()
    stopped = backend.stop(spec.name, grace_seconds=1)
    assert time.monotonic() - began >= 1  # the grace period, then the kill
    assert (stopped.phase, stopped.exit_code) == (Phase.EXITED, 137)
    assert domain.state() == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED]
    assert backend.state(spec.name).exit_code == 137


def test_a_guest_that_stopped_just_before_the_stop_call_is_not_an_error(backend, installation):
    """The race between `isActive()` and `shutdown()`/`destroy()`: the guest powered off
    in between, so libvirt answers "not running". That ends the stop; it is no fault."""
    spec = spec_for(installation)
    backend.start(spec)
    domain = backend._conn().lookupByName(spec.name)
    domain.destroy()  # it stopped on its own, after the caller saw it active
    with pytest.raises(libvirt.libvirtError):
        domain.shutdown()  # what libvirt itself says to the late call
    unless_stopped(domain, domain.shutdown)
    unless_stopped(domain, domain.destroy)
    # An error while the domain still runs is still an error.
    stubborn = spec_for(installation)
    define_stubborn(backend, stubborn)
    backend.start(stubborn)
    running = backend._conn().lookupByName(stubborn.name)
    with pytest.raises(libvirt.libvirtError):
        unless_stopped(running, running.create)  # "already running"


def test_remove_deletes_the_domain_and_its_overlay(backend, installation):
    spec = spec_for(installation)
    backend.start(spec)
    backend.remove(spec.name)
    assert backend.state(spec.name).phase == Phase.MISSING
    pool = backend._conn().storagePoolLookupByName(POOL)
    assert f"{spec.name}.qcow2" not in pool.listVolumes()
    backend.remove(spec.name)
    assert backend.stop(spec.name, grace_seconds=1).phase == Phase.MISSING


def test_an_image_with_no_template_fails_for_good(backend, installation):
    spec = spec_for(installation, image="team/unknown:1")
    with pytest.raises(WorkloadRejected, match="No template volume 'team_unknown_1'"):
        backend.start(spec)
    assert backend.state(spec.name).phase == Phase.MISSING


def test_other_installations_and_unlabelled_domains_are_not_listed(backend, installation):
    mine = spec_for(installation)
    backend.start(mine)
    # The test driver's own domain "test" has no labels at all.
    assert "test" in [d.name() for d in backend._conn().listAllDomains()]
    names = [w.name for w in backend.list_workloads(labels={INSTALLATION_LABEL: installation})]
    assert names == [mine.name]
    assert backend.list_workloads(labels={INSTALLATION_LABEL: f"{installation}-x"}) == []


def test_a_connection_that_fails_is_unavailable(tmp_path):
    backend = LibvirtBackend(
        endpoint=f"qemu+unix:///system?socket={tmp_path}/none", options={}, credentials={}
    )
    with pytest.raises(RuntimeUnavailable, match="libvirt unreachable"):
        backend.ping()


def test_logs_come_from_the_console_file_when_there_is_one(tmp_path, installation):
    backend = LibvirtBackend(
        endpoint="test:///default",
        options={"disk": "none", "console_dir": str(tmp_path)},
        credentials={},
    )
    spec = spec_for(installation)
    backend.start(spec)
    try:
        tree = ET.fromstring(backend._conn().lookupByName(spec.name).XMLDesc())
        assert tree.find("devices/serial/source").get("path") == f"{tmp_path}/{spec.name}.log"
        (tmp_path / f"{spec.name}.log").write_text("boot\nready\nworking\n")
        assert backend.logs(spec.name, tail=2) == ["ready", "working"]
        assert backend.logs("hv-other", tail=2) == []
    finally:
        backend.remove(spec.name)
