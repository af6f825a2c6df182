"""The fault run's Docker step: dockerd SIGKILLed and restarted while starts are in flight.

A stack (gunicorn, RQ workers, rqcron, its own Redis) with a Docker runtime on a private
dockerd (`runtime/tests/engines.py`, in the stack's directory) and two clusters on it.
Several clients create, complete, fail and cancel short workloads (`sleep 1..5` in the
busybox test image) while a fault thread, `kills` times: waits until the engine holds a
labelled container that was created and not yet started (a start in flight between the
engine's create and its start), SIGKILLs dockerd (its containerd dies with it; the
containers' shims live on), keeps it down `down_seconds`, and restarts it. After each restart, and at the end, the labelled
containers are counted per deployment (a duplicate is two for one deployment).

The end: the load over, every deployment of the Docker clusters finished (their
workloads are short), the queue drained and a safety-net pass run; then `manage.py
audit`, every deployment answered 201 present, each deployment consistent with the
engine (a running one has exactly one running container; a finished one none), no
duplicate container, and no container running for a deployment that holds no room.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from devtools.bench import load
from devtools.bench.runs import Say, wait_for_safety_net
from devtools.bench.stack import Stack
from runtime.tests.engines import TEST_IMAGE, DockerEngine

RUNTIME = "faultdocker"
INSTALLATION = "io.hypervisor.installation"
DEPLOYMENT = "io.hypervisor.deployment"
HOLDS_ROOM = ("starting", "running", "stopping")
FINISHED = ("completed", "failed", "cancelled")
DOCKER_CLUSTERS = [
    {"capacity": {"cpu": 4, "ram_mb": 4096, "gpu": 0}, "policy": "fifo"},
    {"capacity": {"cpu": 3, "ram_mb": 2048, "gpu": 0}, "policy": "pack"},
]
# What the stack's processes run with: quick stops and watching, a breaker that retries
# soon after the engine is back, calls that give up well before a client would.
STACK_ENV = {
    "RUNTIME_STOP_GRACE_SECONDS": "1",
    "RUNTIME_WATCH_SECONDS": "1",
    "RUNTIME_BREAKER_RESET_SECONDS": "2",
}


@dataclass(frozen=True)
class DockerFaultShape:
    clients: int = 8
    ops: int = 60  # per client: creates and completes/fails/cancels, mixed
    kills: int = 4
    down_seconds: float = 2.0
    seed: int = 2


@dataclass
class DockerFaultResult:
    lines: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    audit_clean: bool = False
    answered_201: int = 0
    lost: list[int] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    running_without_room: list[str] = field(default_factory=list)
    server_errors: int = 0

    def failures(self, kills: int) -> list[str]:
        failures = []
        if not self.audit_clean:
            failures.append("audit not clean")
        for name in ("lost", "unsettled", "inconsistent", "duplicates", "running_without_room"):
            if getattr(self, name):
                failures.append(f"{name.replace('_', ' ')}: {getattr(self, name)}")
        if self.server_errors:
            failures.append(f"{self.server_errors} 5xx answers")
        if sum("SIGKILLed dockerd" in f for f in self.faults) < kills:
            failures.append("not every dockerd kill was made during a start")
        return failures


def docker_fault_run(
    stack: Stack, engine: DockerEngine, shape: DockerFaultShape, say: Say = print
) -> DockerFaultResult:
    result = DockerFaultResult()

    def report(line: str) -> None:
        result.lines.append(line)
        say(line)

    stack.manage(
        *("runtime", "add", RUNTIME, "--kind", "docker", "--endpoint", engine.endpoint),
        *("--option", "network=none", "--option", "pull=never", "--option", "timeout=10"),
    )
    recorder = load.Recorder()
    org = load.set_up(stack.url, clients=shape.clients, clusters=0, recorder=recorder)
    org.cluster_ids = [
        org.add_cluster({"organization": org.id, "name": f"docker-{i}", "runtime": RUNTIME, **c})
        for i, c in enumerate(DOCKER_CLUSTERS)
    ]
    report(
        f"stack: gunicorn x{stack.config.web_workers}, RQ workers x{stack.config.rq_workers}, "
        f"a private dockerd in {engine.directory}; {shape.clients} clients x {shape.ops} ops "
        f"on {len(org.cluster_ids)} Docker clusters; logs in {stack.dir}"
    )
    rngs = [random.Random(shape.seed * 1000 + i) for i in range(len(org.clients))]
    faults = threading.Thread(
        target=_kill_during_starts, args=(stack, engine, shape, result, report)
    )
    faults.start()
    wall = load.run_concurrently(
        org.clients, lambda c, i: _lifecycle(c, rngs[i], org.cluster_ids, shape.ops)
    )
    report(f"load over after {wall:.1f} s")
    faults.join()
    report(load.format_stats("Docker lifecycle", load.endpoint_stats(recorder.samples, wall), wall))
    result.server_errors = load.server_errors(recorder.samples)
    settled = _wait_settled(stack, org.cluster_ids)
    report(f"every deployment finished {settled:.1f} s after the faults")
    after = datetime.now(UTC)
    stack.wait_drained()
    waited = wait_for_safety_net(stack, after=after)
    stack.wait_drained()
    report(f"a safety-net pass ran {waited:.1f} s later")
    _check(stack, engine, org, result, report)
    return result


def _lifecycle(client: load.Client, rng: random.Random, cluster_ids: list[int], ops: int) -> None:
    for _ in range(ops):
        if not client.active or rng.random() < 0.55:
            body = {
                "cluster": rng.choice(cluster_ids),
                "name": f"fault-{rng.randrange(10**6)}",
                "image": TEST_IMAGE,
                "command": ["sleep", str(rng.choice([1, 2, 3, 5]))],
                "resources": {"cpu": rng.choice([0.25, 0.5, 1]), "ram_mb": 32, "gpu": 0},
                "priority": rng.choice([0, 0, 10, 100]),
                "preemptible": rng.random() < 0.8,
            }
            response = client.call("POST /deployments", "POST", "/api/v1/deployments", body)
            if response is not None and response.status_code == 201:
                client.created.append(response.json()["id"])
                client.active.append(response.json()["id"])
        else:
            load.finish_one(client, rng)
        time.sleep(rng.random() * 0.4)  # a person's pace, so the load spans the faults


def _kill_during_starts(
    stack: Stack,
    engine: DockerEngine,
    shape: DockerFaultShape,
    result: DockerFaultResult,
    report: Say,
) -> None:
    for number in range(1, shape.kills + 1):
        in_flight = _wait_start_in_flight(stack, engine, timeout=120)
        if not in_flight:
            result.faults.append("no start in flight within 120 s: dockerd not killed")
            report(f"  FAULT {result.faults[-1]}")
            continue
        starting = _count(
            stack, "select count(*) from deployments_deployment where status = 'starting'"
        )
        engine.kill()  # containerd dies with it; the containers' shims live on
        began = time.monotonic()
        time.sleep(shape.down_seconds)  # the outage itself, not a wait for anything
        engine.start()
        down = time.monotonic() - began
        line = (
            f"SIGKILLed dockerd ({number} of {shape.kills}) with "
            f"the container(s) of deployment(s) {in_flight} created and not yet started, "
            f"{starting} deployment(s) starting in the database; restarted it, "
            f"{down:.1f} s down"
        )
        result.faults.append(line)
        report(f"  FAULT {line}")
        duplicates = _duplicates(engine)
        result.duplicates += duplicates
        report(
            f"    labelled containers after the restart: {_census(engine)}; duplicates: "
            f"{duplicates or 'none'}"
        )


def _wait_start_in_flight(stack: Stack, engine: DockerEngine, timeout: float) -> list[int]:
    """The deployments that are `starting` in the database and whose container the
    engine has created and not started yet (a container left `created` by an earlier
    crash, whose deployment ended meanwhile, does not count)."""
    client = engine.client()
    try:
        with _connect(stack) as db:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                created = client.containers.list(
                    all=True, sparse=True, filters={"label": INSTALLATION, "status": "created"}
                )
                ids = [int(c.attrs["Labels"].get(DEPLOYMENT, "0")) for c in created]
                if ids:
                    starting = db.execute(
                        "select id from deployments_deployment "
                        "where id = any(%s) and status = 'starting' order by id",
                        (ids,),
                    ).fetchall()
                    if starting:
                        return [pk for (pk,) in starting]
                time.sleep(0.01)
        return []
    finally:
        client.close()


def _labelled(engine: DockerEngine) -> list[tuple[str, str, str]]:
    """(deployment label, container name, state) of every labelled container."""
    client = engine.client()
    try:
        found = client.containers.list(all=True, sparse=True, filters={"label": INSTALLATION})
        return [
            (
                c.attrs["Labels"].get(DEPLOYMENT, "?"),
                c.attrs["Names"][0].lstrip("/"),
                c.attrs["State"],
            )
            for c in found
        ]
    finally:
        client.close()


def _duplicates(engine: DockerEngine) -> list[str]:
    per_deployment = Counter(deployment for deployment, _, _ in _labelled(engine))
    return [f"deployment {d}: {n} containers" for d, n in per_deployment.items() if n > 1]


def _census(engine: DockerEngine) -> str:
    states = Counter(state for _, _, state in _labelled(engine))
    return ", ".join(f"{state} {n}" for state, n in sorted(states.items())) or "none"


def _connect(stack: Stack) -> psycopg.Connection:
    return psycopg.connect(f"{stack.config.pg_url}/{stack.config.database}", autocommit=True)


def _count(stack: Stack, query: str) -> int:
    with _connect(stack) as db:
        return db.execute(query).fetchone()[0]


def _wait_settled(stack: Stack, cluster_ids: list[int], timeout: float = 300) -> float:
    began = time.monotonic()
    query = (
        "select count(*) from deployments_deployment "
        "where cluster_id = any(%s) and status <> all(%s)"
    )
    while time.monotonic() - began < timeout:
        with _connect(stack) as db:
            if db.execute(query, (cluster_ids, list(FINISHED))).fetchone()[0] == 0:
                return time.monotonic() - began
        time.sleep(0.5)
    return time.monotonic() - began  # the check below names what did not settle


def _check(
    stack: Stack,
    engine: DockerEngine,
    org: load.Organization,
    result: DockerFaultResult,
    report: Say,
) -> None:
    audit = stack.audit()
    result.audit_clean = audit.returncode == 0
    report(f"audit (exit {audit.returncode}): {(audit.stdout + audit.stderr).strip()}")
    with _connect(stack) as db:
        rows = db.execute(
            "select id, status, status_reason from deployments_deployment "
            "where cluster_id = any(%s)",
            (org.cluster_ids,),
        ).fetchall()
    deployments = {str(pk): (status, reason) for pk, status, reason in rows}
    answered = {i for client in org.clients for i in client.created}
    result.answered_201 = len(answered)
    result.lost = sorted(answered - {int(pk) for pk in deployments})
    containers: dict[str, list[str]] = {}
    for deployment, _, state in _labelled(engine):
        containers.setdefault(deployment, []).append(state)
    result.duplicates += [f"deployment {d}: {s}" for d, s in containers.items() if len(s) > 1]
    for pk, (status, _) in deployments.items():
        states = containers.get(pk, [])
        if status not in (*FINISHED, "running"):
            result.unsettled.append(f"{pk} {status}")
        elif status == "running" and states != ["running"]:
            result.inconsistent.append(f"{pk} running, containers {states}")
        elif status in FINISHED and states:
            result.inconsistent.append(f"{pk} {status}, containers {states}")
    result.running_without_room = [
        f"deployment {d}"
        for d, states in containers.items()
        if "running" in states and deployments.get(d, ("unknown",))[0] not in HOLDS_ROOM
    ]
    replaced = sum(
        log.read_text(errors="replace").count("replacing a container whose start")
        for log in stack.dir.glob("worker*.log")
    )
    report(f"containers replaced after a start the engine could not finish: {replaced}")
    statuses = Counter(status for status, _ in deployments.values())
    reasons = Counter(reason for status, reason in deployments.values() if status == "failed")
    report(
        f"deployments answered 201: {result.answered_201}; in the database: "
        f"{len(answered & {int(pk) for pk in deployments})}; lost: {len(result.lost)}"
    )
    report("statuses: " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))
    report(
        "failed, by reason: "
        + (", ".join(f"{r!r} {n}" for r, n in reasons.most_common()) or "none")
    )
    report(
        f"labelled containers left: {sum(map(len, containers.values()))}; duplicates: "
        f"{len(result.duplicates)}; inconsistent with the engine: {len(result.inconsistent)}; "
        f"running without room: {len(result.running_without_room)}; unsettled: "
        f"{len(result.unsettled)}; 5xx answers: {result.server_errors}"
    )
