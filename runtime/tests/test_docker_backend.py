"""The Docker backend against a real dockerd (the session's own, see engines.py)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from runtime.backends.base import Phase, RuntimeUnavailable, WorkloadRejected, WorkloadSpec
from runtime.backends.docker_engine import DockerBackend
from runtime.labels import INSTALLATION_LABEL
from runtime.tests.engines import TEST_IMAGE

pytestmark = pytest.mark.engine


@pytest.fixture
def installation():
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def backend(docker_engine, installation):
    backend = DockerBackend(
        endpoint=docker_engine.endpoint, options={"network": "none"}, credentials={}
    )
    yield backend
    for workload in backend.list_workloads(labels={INSTALLATION_LABEL: installation}):
        backend.remove(workload.name)


def spec_for(installation: str, command: list[str] | None, **fields) -> WorkloadSpec:
    name = f"hv-{installation}-{uuid.uuid4().hex[:6]}"
    labels = {INSTALLATION_LABEL: installation, "io.hypervisor.deployment": name[-6:]}
    return WorkloadSpec(
        name=name,
        image=fields.pop("image", TEST_IMAGE),
        labels=labels,
        command=tuple(command) if command is not None else None,
        **fields,
    )


def wait_until_ended(backend: DockerBackend, name: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = backend.state(name)
        if state.ended:
            return state
        time.sleep(0.05)
    raise AssertionError(f"{name} still runs after {timeout}s: {state}")


@pytest.mark.parametrize("code", [0, 3])
def test_the_exit_code_and_output_come_back(backend, installation, code):
    script = f"echo line one; echo line two; echo to stderr >&2; exit {code}"
    spec = spec_for(installation, ["sh", "-c", script])
    started = backend.start(spec)
    assert started.phase in (Phase.RUNNING, Phase.EXITED)
    ended = wait_until_ended(backend, spec.name)
    assert (ended.phase, ended.exit_code, ended.oom_killed) == (Phase.EXITED, code, False)
    # stdout and stderr are two streams: their relative order is not kept.
    lines = backend.logs(spec.name, tail=10)
    assert sorted(lines) == ["line one", "line two", "to stderr"]
    assert [line for line in lines if line.startswith("line")] == ["line one", "line two"]
    assert len(backend.logs(spec.name, tail=1)) == 1


def test_an_out_of_memory_kill_is_reported(backend, installation):
    # `tail` buffers /dev/zero looking for a newline: it grows until the limit kills it.
    spec = spec_for(installation, ["tail", "/dev/zero"], ram_mb=16)
    backend.start(spec)
    ended = wait_until_ended(backend, spec.name)
    assert ended.oom_killed is True
    assert ended.exit_code == 137


def test_command_env_limits_and_labels_are_applied(backend, installation, docker_engine):
    spec = spec_for(
        installation,
        ["sh", "-c", 'echo "$GREETING, $WHO"'],
        env={"GREETING": "hello", "WHO": "world"},
        cpu_millicores=500,
        ram_mb=64,
    )
    backend.start(spec)
    wait_until_ended(backend, spec.name)
    assert backend.logs(spec.name, tail=5) == ["hello, world"]
    inspected = docker_engine.client().api.inspect_container(spec.name)
    config, host = inspected["Config"], inspected["HostConfig"]
    assert config["Cmd"] == ["sh", "-c", 'echo "$GREETING, $WHO"']
    assert {"GREETING=hello", "WHO=world"} <= set(config["Env"])
    assert config["Labels"] == spec.labels
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == host["MemorySwap"] == 64 * 1024 * 1024
    assert host["NetworkMode"] == "none"
    assert host["RestartPolicy"]["Name"] == "no"
    assert not host["PortBindings"]
    assert not host["PublishAllPorts"]


def test_gpus_are_asked_for_as_device_requests(backend, installation, docker_engine):
    spec = spec_for(installation, ["true"], gpu=2)
    # This engine has no GPU driver: it refuses to start, and says why.
    with pytest.raises(WorkloadRejected, match="gpu"):
        backend.start(spec)
    requests = docker_engine.client().api.inspect_container(spec.name)["HostConfig"][
        "DeviceRequests"
    ]
    assert requests == [
        {
            "Driver": "",
            "Count": 2,
            "DeviceIDs": [],
            "Capabilities": [["gpu"]],
            "Options": {},
        }
    ]


def test_stop_is_graceful_when_the_workload_listens(backend, installation):
    spec = spec_for(
        installation, ["sh", "-c", 'trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done']
    )
    backend.start(spec)
    began = time.monotonic()
    stopped = backend.stop(spec.name, grace_seconds=10)
    assert time.monotonic() - began < 5
    assert (stopped.phase, stopped.exit_code) == (Phase.EXITED, 0)
    assert backend.logs(spec.name, tail=5) == ["bye"]


def test_stop_kills_after_the_grace_period(backend, installation):
    # PID 1 with TERM ignored: only the kill ends it.
    spec = spec_for(installation, ["sh", "-c", 'trap "" TERM; while true; do sleep 0.1; done'])
    backend.start(spec)
    began = time.monotonic()
    stopped = backend.stop(spec.name, grace_seconds=1)
    assert time.monotonic() - began >= 1
    assert (stopped.phase, stopped.exit_code) == (Phase.EXITED, 137)
    # Stopping what has ended, and what is gone, is fine.
    assert backend.stop(spec.name, grace_seconds=1).exit_code == 137
    backend.remove(spec.name)
    assert backend.stop(spec.name, grace_seconds=1).phase == Phase.MISSING


def test_an_image_that_does_not_exist_fails_for_good_with_the_engines_words(backend, installation):
    spec = spec_for(installation, None, image="registry.invalid/team/nothing:1")
    with pytest.raises(WorkloadRejected, match=r"Cannot pull registry.invalid/team/nothing:1: .+"):
        backend.start(spec)
    assert backend.state(spec.name).phase == Phase.MISSING


def test_a_command_that_cannot_run_fails_for_good(backend, installation):
    spec = spec_for(installation, ["/no/such/program"])
    with pytest.raises(WorkloadRejected, match="no such file or directory"):
        backend.start(spec)


def test_start_is_idempotent_even_when_concurrent(backend, installation, docker_engine):
    spec = spec_for(installation, ["sh", "-c", "echo once; sleep 30"])
    results = []

    def start() -> None:
        # Each thread its own backend, as separate workers would have.
        other = DockerBackend(
            endpoint=docker_engine.endpoint, options={"network": "none"}, credentials={}
        )
        results.append(other.start(spec).phase)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [Phase.RUNNING] * 4
    assert backend.start(spec).phase == Phase.RUNNING
    containers = docker_engine.client().containers.list(all=True, filters={"name": spec.name})
    assert len(containers) == 1
    assert backend.logs(spec.name, tail=5) == ["once"]


def test_a_restarted_start_does_not_run_an_ended_workload_again(backend, installation):
    spec = spec_for(installation, ["sh", "-c", "echo ran; exit 3"])
    backend.start(spec)
    wait_until_ended(backend, spec.name)
    again = backend.start(spec)
    assert (again.phase, again.exit_code) == (Phase.EXITED, 3)
    assert backend.logs(spec.name, tail=5) == ["ran"]


def test_two_installations_on_one_engine_see_only_their_own(backend, installation):
    other = f"{installation}-other"
    mine = spec_for(installation, ["sleep", "30"])
    theirs = spec_for(other, ["sleep", "30"])
    backend.start(mine)
    backend.start(theirs)
    try:
        listed = backend.list_workloads(labels={INSTALLATION_LABEL: installation})
        assert [(w.name, w.labels, w.state.phase) for w in listed] == [
            (mine.name, mine.labels, Phase.RUNNING)
        ]
        assert [w.name for w in backend.list_workloads(labels={INSTALLATION_LABEL: other})] == [
            theirs.name
        ]
    finally:
        backend.remove(theirs.name)


def test_remove_deletes_a_running_workload_and_is_idempotent(backend, installation):
    spec = spec_for(installation, ["sleep", "30"])
    backend.start(spec)
    backend.remove(spec.name)
    assert backend.state(spec.name).phase == Phase.MISSING
    assert backend.logs(spec.name, tail=5) == []
    backend.remove(spec.name)


def test_an_engine_that_is_not_there_is_unavailable(tmp_path):
    backend = DockerBackend(endpoint=f"unix://{tmp_path}/none.sock", options={}, credentials={})
    with pytest.raises(RuntimeUnavailable, match="unreachable"):
        backend.ping()
    with pytest.raises(RuntimeUnavailable):
        backend.state("anything")
