"""The libvirt backend: one persistent domain per workload, through `libvirt-python`.

The endpoint is a libvirt connection URI (`qemu:///system`, `qemu+ssh://host/system`,
`test:///default` for the unit tests). A domain gets vCPUs (the request's CPU rounded up
to whole cores, at least one), memory (`ram_mb`) and ACPI (without it QEMU's guest never
hears the stop's shutdown request, nor can it power itself off), and carries the
workload's labels in its metadata (`<hv:labels>` in namespace `LABELS_NS`).

How `image` becomes a disk: the runtime's storage pool (option `pool`, default
`default`) holds one *template volume* per image, named by the image reference with
every character outside `[A-Za-z0-9._-]` replaced by `_` (`registry.example.com:5000/
team/vm:1.4` -> `registry.example.com_5000_team_vm_1.4`). Each domain boots from a new
copy-on-write qcow2 overlay of it, `<domain name>.qcow2` in the same pool, deleted with
the domain. A missing template fails the workload for good. Option `disk=none` boots no
disk (a domain with only a kernel, or the test driver).

Options: `pool`, `disk`, `domain_type` (default `test` on the test driver, else `kvm`;
`qemu` for TCG), `console_dir` (a directory on the libvirt host where the serial console
is written to `<name>.log`; `logs()` reads it when it is local, else answers nothing).

A domain has no exit code of its own; the shut-off reason stands in for one: a shutdown
from inside is 0, a crash or a failed start 1, a destroy (a kill) 137. `command` and
`env` are not passed to the guest: a VM boots its image.
"""

from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import libvirt

from runtime.backends.base import (
    MISSING,
    Phase,
    RuntimeUnavailable,
    Workload,
    WorkloadRejected,
    WorkloadSpec,
    WorkloadState,
)

LABELS_NS = "https://hypervisor.invalid/xmlns/labels/1"
# Errors that say the connection (not the request) is at fault: worth a retry.
_TRANSIENT = {
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_INTERNAL_ERROR,
    libvirt.VIR_ERR_OPERATION_TIMEOUT,
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
}
_EXIT_OF_SHUTOFF = {
    libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: 0,
    libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: 1,
    libvirt.VIR_DOMAIN_SHUTOFF_FAILED: 1,
    libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: 137,
}
_POLL_SECONDS = 0.2

# libvirt prints every error to stderr unless a handler takes them; ours are raised.
libvirt.registerErrorHandler(lambda _context, _error: None, None)


def volume_name(image: str) -> str:
    """The template volume that stands for an image reference (module docstring)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", image)


def unless_stopped(domain: libvirt.virDomain, call: Callable[[], object]) -> None:
    """`call` (a shutdown or destroy), except that a domain which stopped on its own
    between the caller's `isActive()` and the call is not an error: libvirt says "not
    running" then (OPERATION_INVALID on QEMU, INTERNAL_ERROR on the test driver)."""
    try:
        call()
    except libvirt.libvirtError:
        if domain.isActive():
            raise


def _translate(error: libvirt.libvirtError) -> Exception:
    if error.get_error_code() in _TRANSIENT:
        return RuntimeUnavailable(f"libvirt unreachable: {error.get_error_message()}")
    return WorkloadRejected(error.get_error_message() or str(error))


class LibvirtBackend:
    """Domains on one libvirt connection (see the module docstring)."""

    queues = False

    def __init__(self, *, endpoint: str, options: dict[str, Any], credentials: dict) -> None:
        self.uri = endpoint
        self.pool = options.get("pool", "default")
        self.disk = options.get("disk", "overlay")
        default_type = "test" if endpoint.startswith("test:") else "kvm"
        self.domain_type = options.get("domain_type", default_type)
        self.console_dir = options.get("console_dir") or None
        self._connection: libvirt.virConnect | None = None

    def _conn(self) -> libvirt.virConnect:
        # One connection per backend: the test driver keeps its state per connection.
        if self._connection is None or not self._connection.isAlive():
            try:
                self._connection = libvirt.open(self.uri)
            except libvirt.libvirtError as error:
                raise RuntimeUnavailable(f"libvirt unreachable: {error}") from error
        return self._connection

    def _domain(self, name: str) -> libvirt.virDomain | None:
        try:
            return self._conn().lookupByName(name)
        except libvirt.libvirtError as error:
            if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise _translate(error) from error

    def ping(self) -> None:
        try:
            self._conn().getLibVersion()
        except libvirt.libvirtError as error:
            raise _translate(error) from error

    def start(self, spec: WorkloadSpec) -> WorkloadState:
        try:
            domain = self._domain(spec.name) or self._define(spec)
            status, reason = domain.state()
            # Shut off for an unknown reason: defined but never run (a retried start).
            if (
                status == libvirt.VIR_DOMAIN_SHUTOFF
                and reason == libvirt.VIR_DOMAIN_SHUTOFF_UNKNOWN
            ):
                domain.create()
            return _state_of(domain)
        except libvirt.libvirtError as error:
            raise _translate(error) from error

    def _define(self, spec: WorkloadSpec) -> libvirt.virDomain:
        disk = "" if self.disk == "none" else self._overlay_disk(spec)
        try:
            return self._conn().defineXML(self._domain_xml(spec, disk))
        except libvirt.libvirtError as error:
            if error.get_error_code() == libvirt.VIR_ERR_OPERATION_FAILED:
                # Defined by a concurrent start in the meantime: the name is deterministic.
                existing = self._domain(spec.name)
                if existing is not None:
                    return existing
            raise

    def _overlay_disk(self, spec: WorkloadSpec) -> str:
        conn = self._conn()
        try:
            pool = conn.storagePoolLookupByName(self.pool)
            template = pool.storageVolLookupByName(volume_name(spec.image))
        except libvirt.libvirtError as error:
            raise WorkloadRejected(
                f"No template volume {volume_name(spec.image)!r} for image {spec.image!r} "
                f"in storage pool {self.pool!r}: {error.get_error_message()}"
            ) from error
        overlay_name = f"{spec.name}.qcow2"
        try:
            overlay = pool.storageVolLookupByName(overlay_name)
        except libvirt.libvirtError:
            overlay = pool.createXML(
                f"<volume><name>{escape(overlay_name)}</name>"
                f"<capacity>{template.info()[1]}</capacity>"
                "<target><format type='qcow2'/></target>"
                f"<backingStore><path>{escape(template.path())}</path>"
                "<format type='qcow2'/></backingStore></volume>",
                0,
            )
        return (
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file={quoteattr(overlay.path())}/><target dev='vda' bus='virtio'/></disk>"
        )

    def _domain_xml(self, spec: WorkloadSpec, disk: str) -> str:
        vcpus = max(1, math.ceil(spec.cpu_millicores / 1000))
        labels = "".join(
            f"<hv:label name={quoteattr(key)}>{escape(value)}</hv:label>"
            for key, value in sorted(spec.labels.items())
        )
        console = ""
        if self.console_dir:
            path = str(Path(self.console_dir) / f"{spec.name}.log")
            console = f"<serial type='file'><source path={quoteattr(path)}/></serial>"
        return (
            f"<domain type={quoteattr(self.domain_type)}><name>{escape(spec.name)}</name>"
            f"<memory unit='MiB'>{max(spec.ram_mb, 1)}</memory><vcpu>{vcpus}</vcpu>"
            "<os><type>hvm</type></os><features><acpi/></features>"
            f"<metadata><hv:labels xmlns:hv={quoteattr(LABELS_NS)}>{labels}</hv:labels>"
            f"</metadata><devices>{disk}{console}</devices></domain>"
        )

    def stop(self, name: str, *, grace_seconds: float) -> WorkloadState:
        try:
            domain = self._domain(name)
            if domain is None:
                return MISSING
            if domain.isActive():
                unless_stopped(domain, domain.shutdown)  # ACPI: the guest's chance to end
                deadline = time.monotonic() + grace_seconds
                while domain.isActive() and time.monotonic() < deadline:
                    time.sleep(_POLL_SECONDS)
                if domain.isActive():
                    unless_stopped(domain, domain.destroy)
            return _state_of(domain)
        except libvirt.libvirtError as error:
            raise _translate(error) from error

    def state(self, name: str) -> WorkloadState:
        try:
            domain = self._domain(name)
            return MISSING if domain is None else _state_of(domain)
        except libvirt.libvirtError as error:
            raise _translate(error) from error

    def logs(self, name: str, *, tail: int) -> list[str]:
        if not self.console_dir:
            return []
        path = Path(self.console_dir) / f"{name}.log"
        try:
            with path.open(encoding="utf-8", errors="replace") as console:
                return list(deque((line.rstrip("\n") for line in console), maxlen=tail))
        except OSError:
            return []

    def remove(self, name: str) -> None:
        try:
            domain = self._domain(name)
            if domain is not None:
                if domain.isActive():
                    unless_stopped(domain, domain.destroy)
                domain.undefine()
            if self.disk != "none":
                self._remove_overlay(name)
        except libvirt.libvirtError as error:
            raise _translate(error) from error

    def _remove_overlay(self, name: str) -> None:
        try:
            pool = self._conn().storagePoolLookupByName(self.pool)
            pool.storageVolLookupByName(f"{name}.qcow2").delete(0)
        except libvirt.libvirtError as error:
            if error.get_error_code() not in (
                libvirt.VIR_ERR_NO_STORAGE_VOL,
                libvirt.VIR_ERR_NO_STORAGE_POOL,
            ):
                raise

    def list_workloads(self, *, labels: dict[str, str]) -> list[Workload]:
        try:
            found = []
            for domain in self._conn().listAllDomains():
                carried = _labels_of(domain)
                if all(carried.get(key) == value for key, value in labels.items()):
                    found.append(Workload(domain.name(), carried, _state_of(domain)))
            return found
        except libvirt.libvirtError as error:
            raise _translate(error) from error


def _labels_of(domain: libvirt.virDomain) -> dict[str, str]:
    try:
        text = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, LABELS_NS)
    except libvirt.libvirtError:
        return {}  # no labels of ours: not our workload
    return {label.get("name", ""): label.text or "" for label in ET.fromstring(text)}


def _state_of(domain: libvirt.virDomain) -> WorkloadState:
    status, reason = domain.state()
    if status in (
        libvirt.VIR_DOMAIN_RUNNING,
        libvirt.VIR_DOMAIN_PAUSED,
        libvirt.VIR_DOMAIN_BLOCKED,
    ):
        return WorkloadState(Phase.RUNNING)
    if status == libvirt.VIR_DOMAIN_SHUTOFF and reason == libvirt.VIR_DOMAIN_SHUTOFF_UNKNOWN:
        return WorkloadState(Phase.CREATED)
    if status == libvirt.VIR_DOMAIN_CRASHED:
        return WorkloadState(Phase.EXITED, exit_code=1, error="the domain crashed")
    if status == libvirt.VIR_DOMAIN_SHUTOFF:
        return WorkloadState(Phase.EXITED, exit_code=_EXIT_OF_SHUTOFF.get(reason, 0))
    return WorkloadState(Phase.RUNNING)  # shutting down, suspended: still holds its room
