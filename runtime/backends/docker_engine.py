"""The Docker backend: one container per workload, through the `docker` SDK.

Any Engine API endpoint: `unix:///var/run/docker.sock`, or `tcp://host:2376` with TLS
client certificates (the runtime's `credentials`: PEM texts `ca_cert`, `client_cert`,
`client_key`). Options: `network` (the container's network mode; default the engine's,
`none` for no network), `pull` (`missing`, the default: pull an image the engine lacks;
`never`), `timeout` (seconds for one API call, default 30).

A container gets the image, the command (replacing the image's), the environment, a CPU
limit (NanoCpus) and a memory limit (Memory, with no swap beyond it) from the request,
GPUs as device requests, restart policy `no`, and no published ports. A request of 0 CPU
or 0 MiB RAM sets no limit in that dimension (the engine has no "zero" limit).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import requests
from docker.constants import MINIMUM_DOCKER_API_VERSION
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.tls import TLSConfig
from docker.types import DeviceRequest

from runtime.backends.base import (
    MISSING,
    Phase,
    RuntimeUnavailable,
    Workload,
    WorkloadRejected,
    WorkloadSpec,
    WorkloadState,
)

_PHASES = {
    "created": Phase.CREATED,
    "running": Phase.RUNNING,
    "paused": Phase.RUNNING,
    "restarting": Phase.RUNNING,
    "removing": Phase.EXITED,
    "exited": Phase.EXITED,
    "dead": Phase.EXITED,
}
MIB = 1024 * 1024
logger = logging.getLogger(__name__)


@contextmanager
def _engine_errors() -> Iterator[None]:
    """Translate the SDK's errors into the protocol's two kinds."""
    try:
        yield
    except APIError as error:
        # 4xx: the engine understood and refused; 5xx: its own trouble, maybe passing.
        if error.status_code is not None and 400 <= error.status_code < 500:
            raise WorkloadRejected(_engine_message(error)) from error
        raise RuntimeUnavailable(_engine_message(error)) from error
    except (DockerException, requests.RequestException, OSError) as error:
        # A missing socket is requests' ConnectionError, not a DockerException.
        raise RuntimeUnavailable(f"Docker engine unreachable: {error}") from error


def _engine_message(error: APIError) -> str:
    explanation = error.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return str(explanation or error)


def _stale_task(error: APIError) -> bool:
    """The engine's own leftover of a start it never finished (see `_remove_stale`):
    containerd kept the task ("task ...: already exists") or runc its container ("id
    already in use")."""
    message = _engine_message(error)
    return (error.status_code or 0) >= 500 and (
        "already exists" in message or "id already in use" in message
    )


def _being_removed(error: APIError) -> bool:
    """Someone (a concurrent replacement) is removing the container being started."""
    return error.status_code == 409 and "marked for removal" in _engine_message(error)


def _tls_config(credentials: dict[str, str]) -> tuple[TLSConfig, Path]:
    """The SDK (and the `ssl` module under it) wants files: the PEM texts go to a new
    private directory (mkdtemp: mode 0700, a name no one can guess or prepare), each
    file created 0600; the caller removes the directory with the backend."""
    directory = Path(tempfile.mkdtemp(prefix="hv-docker-tls-"))
    paths = {}
    for key in ("ca_cert", "client_cert", "client_key"):
        if credentials.get(key):
            path = directory / f"{key}.pem"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(credentials[key])
            paths[key] = str(path)
    client_cert = (paths["client_cert"], paths["client_key"]) if "client_key" in paths else None
    # verify=True: the engine's certificate must chain to `ca_cert` (or, without one, to
    # the system's CAs) and name the endpoint's host.
    tls = TLSConfig(client_cert=client_cert, ca_cert=paths.get("ca_cert"), verify=True)
    return tls, directory


class DockerBackend:
    """Containers on one Docker engine (see the module docstring)."""

    queues = False

    def __init__(self, *, endpoint: str, options: dict[str, Any], credentials: dict) -> None:
        self.endpoint = endpoint
        self.network = options.get("network") or None
        self.pull = options.get("pull", "missing")
        self.timeout = int(options.get("timeout", 30))
        self.credentials = credentials
        self._client: docker.DockerClient | None = None
        self._tls: TLSConfig | None = None

    def _tls_settings(self) -> TLSConfig | bool:
        # Written once per backend (every reconnection reuses the files), and removed
        # with it.
        if self._tls is None and self.credentials:
            self._tls, directory = _tls_config(self.credentials)
            weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
        return self._tls or False

    def _engine(self) -> docker.DockerClient:
        if self._client is None:
            with _engine_errors():
                # The engine's API version is asked first (this call connects), then used.
                probe = self._open(MINIMUM_DOCKER_API_VERSION)
                try:
                    version = probe.api.version(api_version=False)["ApiVersion"]
                finally:
                    probe.close()
                self._client = self._open(version)
        return self._client

    def _open(self, version: str) -> docker.DockerClient:
        client = docker.DockerClient(
            base_url=self.endpoint, version=version, timeout=self.timeout, tls=self._tls_settings()
        )
        # requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE from the environment replace
        # a session's CA (psf/requests#3829): the runtime's own CA must be the one used.
        client.api.trust_env = False
        return client

    def _call(self, operation: Callable[[docker.DockerClient], Any]) -> Any:
        client = self._engine()
        try:
            with _engine_errors():
                return operation(client)
        except RuntimeUnavailable:
            # The engine may have restarted: reconnect on the next call.
            self._client = None
            client.close()
            raise

    def ping(self) -> None:
        self._call(lambda client: client.ping())

    def start(self, spec: WorkloadSpec) -> WorkloadState:
        return self._call(lambda client: self._start(client, spec))

    def _start(self, client: docker.DockerClient, spec: WorkloadSpec) -> WorkloadState:
        # A few rounds at most: each one that does not end waited for a container of
        # this name to go away, which a concurrent start may have replaced.
        for _ in range(3):
            container = self._find(client, spec.name) or self._create(client, spec)
            if container.status in ("removing", "dead"):
                self._await_removal(client, container.id)
                continue
            if container.status != "created":
                # Only a container that never ran is started: a retried start of one
                # that already ran and exited must not run it twice.
                return _state_of(container)
            try:
                container.start()
            except APIError as error:
                if _stale_task(error):
                    self._remove_stale(client, container, spec)
                elif _being_removed(error):
                    self._await_removal(client, container.id)
                else:
                    # The engine answered: what it refused to start (a program that
                    # does not exist, a device it cannot give) will be refused again,
                    # whatever the status code (20.10 answers 500 for OCI runtime errors).
                    raise WorkloadRejected(_engine_message(error)) from error
                continue
            container.reload()
            return _state_of(container)
        raise RuntimeUnavailable(f"Container {spec.name} kept being replaced; try again.")

    def _remove_stale(self, client: docker.DockerClient, stale: Container, spec: WorkloadSpec):
        """Remove a container whose start the engine can never carry out.

        dockerd killed between containerd's task creation and its start leaves the task
        behind, and 20.10 answers every later start with "task ...: already exists"
        (moby/moby#44399), or "id already in use" when runc kept the container. That container never ran: it is removed, by id, and the next
        round makes a new one of the same name (or finds the one a concurrent start
        made: removing by id never touches it).
        """
        logger.warning(
            "replacing a container whose start the engine cannot finish",
            extra={"workload": spec.name, "container": stale.id},
        )
        try:
            client.api.remove_container(stale.id, force=True)
        except NotFound:
            pass
        except APIError as error:
            if error.status_code != 409:  # 409: its removal is already in progress
                raise
            self._await_removal(client, stale.id)

    def _await_removal(self, client: docker.DockerClient, container_id: str) -> None:
        """Wait until the engine has removed a container that it is removing (a
        concurrent replacement, or a removal a crash interrupted, which dockerd finishes
        when it starts again)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                client.api.inspect_container(container_id)
            except NotFound:
                return
            if time.monotonic() > deadline:
                raise RuntimeUnavailable(f"Container {container_id[:12]} is never removed.")
            time.sleep(0.05)

    def _find(self, client: docker.DockerClient, name: str) -> Container | None:
        try:
            return client.containers.get(name)
        except NotFound:
            return None

    def _create(self, client: docker.DockerClient, spec: WorkloadSpec) -> Container:
        try:
            return client.containers.create(**self._create_arguments(spec))
        except ImageNotFound:
            if self.pull == "never":
                raise
            self._pull(client, spec.image)
            return client.containers.create(**self._create_arguments(spec))
        except APIError as error:
            if error.status_code != 409:
                raise
            # A concurrent or retried start made it first: the name is deterministic.
            return self._await_creation(client, spec.name)

    def _await_creation(self, client: docker.DockerClient, name: str) -> Container:
        # The engine reserves the name before the container exists: a concurrent
        # creation may take a moment to become visible.
        deadline = time.monotonic() + self.timeout
        while (container := self._find(client, name)) is None:
            if time.monotonic() > deadline:
                raise RuntimeUnavailable(f"Container {name} reserved but never created.")
            time.sleep(0.05)
        return container

    def _pull(self, client: docker.DockerClient, image: str) -> None:
        try:
            client.images.pull(image)
        except APIError as error:
            # An image that cannot be pulled (unknown, no access, no registry) fails the
            # workload for good, with the engine's words.
            raise WorkloadRejected(f"Cannot pull {image}: {_engine_message(error)}") from error

    def _create_arguments(self, spec: WorkloadSpec) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "image": spec.image,
            "name": spec.name,
            "labels": dict(spec.labels),
            "environment": dict(spec.env),
            "restart_policy": {"Name": "no"},
            "detach": True,
        }
        if spec.command is not None:
            arguments["command"] = list(spec.command)
        if self.network:
            arguments["network_mode"] = self.network
        if spec.cpu_millicores:
            arguments["nano_cpus"] = spec.cpu_millicores * 1_000_000
        if spec.ram_mb:
            arguments["mem_limit"] = spec.ram_mb * MIB
            arguments["memswap_limit"] = spec.ram_mb * MIB
        if spec.gpu:
            arguments["device_requests"] = [DeviceRequest(count=spec.gpu, capabilities=[["gpu"]])]
        return arguments

    def stop(self, name: str, *, grace_seconds: float) -> WorkloadState:
        return self._call(lambda client: self._stop(client, name, grace_seconds))

    def _stop(self, client: docker.DockerClient, name: str, grace_seconds: float) -> WorkloadState:
        container = self._find(client, name)
        if container is None:
            return MISSING
        if container.status in ("running", "paused", "restarting"):
            # The engine sends the stop signal, then SIGKILL after the timeout.
            container.stop(timeout=max(0, round(grace_seconds)))
            container.reload()
        return _state_of(container)

    def state(self, name: str) -> WorkloadState:
        def inspect(client: docker.DockerClient) -> WorkloadState:
            container = self._find(client, name)
            return MISSING if container is None else _state_of(container)

        return self._call(inspect)

    def logs(self, name: str, *, tail: int) -> list[str]:
        def read(client: docker.DockerClient) -> list[str]:
            container = self._find(client, name)
            if container is None:
                return []
            output = container.logs(stdout=True, stderr=True, tail=tail)
            return output.decode("utf-8", "replace").splitlines()

        return self._call(read)

    def remove(self, name: str) -> None:
        def delete(client: docker.DockerClient) -> None:
            try:
                client.api.remove_container(name, force=True)
            except NotFound:
                pass
            except APIError as error:
                if error.status_code != 409:  # 409: its removal is already in progress
                    raise

        self._call(delete)

    def list_workloads(self, *, labels: dict[str, str]) -> list[Workload]:
        def listing(client: docker.DockerClient) -> list[Workload]:
            selector = [f"{key}={value}" for key, value in labels.items()]
            # sparse: one request for all, not one inspection per container; the phase
            # comes from the summary, the exit code from `state()` when it matters.
            found = client.containers.list(all=True, sparse=True, filters={"label": selector})
            return [
                Workload(
                    name=container.attrs["Names"][0].lstrip("/"),
                    labels=container.attrs.get("Labels") or {},
                    state=WorkloadState(_PHASES.get(container.attrs["State"], Phase.EXITED)),
                )
                for container in found
            ]

        return self._call(listing)


def _state_of(container: Container) -> WorkloadState:
    state = container.attrs["State"]
    phase = _PHASES.get(state["Status"], Phase.EXITED)
    return WorkloadState(
        phase=phase,
        exit_code=state.get("ExitCode") if phase == Phase.EXITED else None,
        oom_killed=bool(state.get("OOMKilled")),
        error=state.get("Error") or "",
    )
