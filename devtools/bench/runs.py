"""The load run and the fault run: phases, figures, and the final checks.

Both end the same way: wait for the queue to drain and for a safety-net pass (enqueued
by rqcron) to finish after the load, then `manage.py audit` and a check that every
deployment answered 201 still exists.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devtools.bench import load
from devtools.bench.stack import Stack, children_of

Say = Callable[[str], None]


@dataclass
class RunResult:
    lines: list[str] = field(default_factory=list)
    server_errors: int = 0
    connection_errors: int = 0
    get_per_second: float = 0.0
    create_and_schedule_per_second: float = 0.0
    audit_clean: bool = False
    audit_output: str = ""
    answered_201: int = 0
    lost: list[int] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    # (start, end) wall-clock times of the Redis and PostgreSQL outages.
    outages: list[tuple[float, float]] = field(default_factory=list)
    errors_outside_outages: int = 0

    @property
    def ratio(self) -> float:
        return self.create_and_schedule_per_second / self.get_per_second

    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class LoadShape:
    clients: int = 16
    clusters: int = 4
    get_ops: int = 60  # per client and round
    create_ops: int = 30  # per client and round
    lifecycle_ops: int = 60  # per client
    rounds: int = 3  # of a GET phase then a create phase, each round on fresh clusters
    latency_samples: int = 10
    seed: int = 1


def load_run(stack: Stack, shape: LoadShape, say: Say = print) -> RunResult:
    result = RunResult()

    def report(line: str) -> None:
        result.lines.append(line)
        say(line)

    org = _set_up(stack, shape, report)
    rngs = [random.Random(shape.seed * 1000 + i) for i in range(len(org.clients))]
    everything: list[load.Sample] = []

    # 0. Start latency on the idle stack: what one user sees of the merge window.
    if shape.latency_samples:
        cluster_id = org.add_cluster(
            {"organization": org.id, "name": "latency", **load.CLUSTERS[2]}
        )
        latencies = sorted(
            load.start_latencies(org.owner, cluster_id, samples=shape.latency_samples, pause=0.6)
        )
        report(
            f"start latency on an idle stack (create -> running, {len(latencies)} creates one "
            f"at a time): p50 {load.percentile(latencies, 50) * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms"
        )

    # 1. Rounds: the framework's ceiling (a trivial authenticated GET), then creates
    # answered after their commit and scheduled by the workers. The machine's speed
    # drifts over seconds; rounds side by side compare the two under the same drift.
    gets = creates = 0
    get_wall = create_wall = 0.0
    ratios = []
    for number in range(1, shape.rounds + 1):
        if number > 1:  # fresh clusters: every round starts from empty queues
            org.cluster_ids = org.add_clusters(shape.clusters, prefix=f"round{number}")
        report(f"round {number} of {shape.rounds}")
        ok, wall = _get_phase(stack, org, shape, everything, report)
        gets, get_wall = gets + ok, get_wall + wall
        created, wall_and_drain = _create_phase(stack, org, shape, rngs, everything, report)
        creates, create_wall = creates + created, create_wall + wall_and_drain
        ratios.append((created / wall_and_drain) / (ok / wall))
        report(f"  round {number}: create-and-schedule / GET = {ratios[-1]:.0%}")
    result.get_per_second = gets / get_wall
    result.create_and_schedule_per_second = creates / create_wall

    # 2. The lifecycle: creates, completions, failures and cancellations, mixed.
    recorder = _use(org, load.Recorder())
    wall = load.run_concurrently(
        org.clients,
        lambda c, i: load.lifecycle(c, rngs[i], org.cluster_ids, shape.lifecycle_ops),
    )
    everything += recorder.samples
    report(load.format_stats("lifecycle", load.endpoint_stats(recorder.samples, wall), wall))

    _finish(stack, org, everything, result, report)
    report(
        f"rounds: {', '.join(f'{r:.0%}' for r in ratios)}; over all rounds, "
        f"create-and-schedule / GET = {result.create_and_schedule_per_second:.1f} / "
        f"{result.get_per_second:.1f} = {result.ratio:.0%} (bar: >= 50%)"
    )
    return result


def _get_phase(
    stack: Stack,
    org: load.Organization,
    shape: LoadShape,
    everything: list[load.Sample],
    report: Say,
) -> tuple[int, float]:
    """Every client GETs /auth/me at once; (200 answers, wall seconds)."""
    recorder = _use(org, load.Recorder())
    cpu = stack.cpu_seconds()
    wall = load.run_concurrently(org.clients, lambda c, i: load.gets(c, shape.get_ops))
    get_cpu = cpu_per_request(cpu, stack.cpu_seconds(), len(recorder.samples))
    everything += recorder.samples
    report(
        load.format_stats("GET /api/v1/auth/me", load.endpoint_stats(recorder.samples, wall), wall)
    )
    report(f"  CPU ms per GET /auth/me: {get_cpu}")
    return _ok(recorder.samples), wall


def _create_phase(
    stack: Stack,
    org: load.Organization,
    shape: LoadShape,
    rngs: list[random.Random],
    everything: list[load.Sample],
    report: Say,
) -> tuple[int, float]:
    """Every client creates at once; (201 answers, seconds until the last pass ended)."""
    recorder = _use(org, load.Recorder())
    passes = scheduler_metrics(stack)[_PASS_METRICS[0]]
    cpu = stack.cpu_seconds()
    wall = load.run_concurrently(
        org.clients, lambda c, i: load.creates(c, rngs[i], org.cluster_ids, shape.create_ops)
    )
    answered = datetime.now(UTC)
    confirmed = stack.wait_drained()
    drained = datetime.now(UTC)
    create_cpu = cpu_per_request(cpu, stack.cpu_seconds(), len(recorder.samples))
    everything += recorder.samples
    report(load.format_stats("creates", load.endpoint_stats(recorder.samples, wall), wall))
    created = sum(1 for s in recorder.samples if s.status == 201)
    # Scheduled when the last pass after the last answer ended (none: all had run).
    last_ended = stack.last_job_ended(before=drained)
    drain = max(0.0, (last_ended - answered).total_seconds()) if last_ended else 0.0
    report(
        f"  created {created} in {wall:.2f} s; the last pass ended {drain:.2f} s after the "
        f"last answer (the queue was seen drained {confirmed:.2f} s after it): "
        f"create-and-schedule {created / (wall + drain):.1f}/s (requests {created / wall:.1f}/s)"
    )
    passes = scheduler_metrics(stack)[_PASS_METRICS[0]] - passes
    report(f"  CPU ms per create, scheduled: {create_cpu}; {passes:.0f} passes")
    return created, wall + drain


def cpu_per_request(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], n: int
) -> str:
    """Each part's CPU between two readings, per request: the processes alive at the
    second reading, less what each had used at the first (a new process: all of it; one
    gone by the time it was read counts 0)."""
    parts = {
        part: sum(max(0.0, used - before[part].get(pid, 0.0)) for pid, used in after[part].items())
        * 1000
        / max(n, 1)
        for part in after
    }
    text = ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
    return f"{text}; total {sum(parts.values()):.1f}"


def _set_up(stack: Stack, shape: LoadShape, report: Say) -> load.Organization:
    recorder = load.Recorder()
    org = load.set_up(stack.url, clients=shape.clients, clusters=shape.clusters, recorder=recorder)
    load.run_concurrently(org.clients, lambda c, i: load.gets(c, 5))  # warm every worker
    report(
        f"stack: gunicorn x{stack.config.web_workers}, RQ workers x{stack.config.rq_workers}, "
        f"rqcron every {stack.config.safety_net_seconds} s; {shape.clients} clients, "
        f"{len(org.cluster_ids)} clusters; logs in {stack.dir}"
    )
    return org


def _use(org: load.Organization, recorder: load.Recorder) -> load.Recorder:
    for client in org.clients:
        client.recorder = recorder
    return recorder


def _ok(samples: list[load.Sample]) -> int:
    return sum(1 for s in samples if 200 <= s.status < 300)


def _finish(
    stack: Stack,
    org: load.Organization,
    samples: list[load.Sample],
    result: RunResult,
    report: Say,
) -> None:
    """Drain, wait for a safety-net pass that started after the load, audit, count."""
    load_ended = datetime.now(UTC)
    drained = stack.wait_drained()
    report(f"queue drained {drained:.2f} s after the load")
    waited = wait_for_safety_net(stack, after=load_ended)
    stack.wait_drained()
    report(f"a safety-net pass (rqcron) started and finished {waited:.1f} s after the load")
    audit = stack.audit()
    result.audit_output = (audit.stdout + audit.stderr).strip()
    result.audit_clean = audit.returncode == 0
    report(f"audit (exit {audit.returncode}): {result.audit_output}")
    result.server_errors = load.server_errors(samples)
    result.connection_errors = load.connection_errors(samples)
    report(f"5xx answers: {result.server_errors}; connection errors: {result.connection_errors}")
    answered = {i for client in org.clients for i in client.created}
    existing = existing_deployments(stack)
    result.answered_201 = len(answered)
    result.lost = sorted(answered - existing)
    report(
        f"deployments answered 201: {len(answered)}; found in the database: "
        f"{len(answered & existing)}; lost: {len(result.lost)}"
    )
    report(scheduler_metrics_summary(stack))


def wait_for_safety_net(stack: Stack, *, after: datetime, timeout: float = 120) -> float:
    """Wait until a `safety_net_job` enqueued after `after` has finished."""
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            connection = stack.redis()
            ids = FinishedJobRegistry("default", connection=connection).get_job_ids()
            for job in Job.fetch_many(ids, connection=connection):
                if job is None or job.func_name != "scheduler.jobs.safety_net_job":
                    continue
                enqueued = job.enqueued_at
                if enqueued is not None and enqueued.tzinfo is None:
                    enqueued = enqueued.replace(tzinfo=UTC)
                if enqueued is not None and enqueued > after:
                    return time.monotonic() - began
        except Exception:  # Redis restarting in a fault run: look again
            pass
        time.sleep(0.5)
    raise RuntimeError("no safety-net pass ran after the load")


def existing_deployments(stack: Stack) -> set[int]:
    """Every deployment id in the database (read directly, not through the API)."""
    code = (
        "from deployments.models import Deployment; "
        "print(' '.join(map(str, Deployment.objects.values_list('pk', flat=True))))"
    )
    output = stack.manage("shell", "-c", code).stdout
    return {int(x) for x in output.split() if x.isdigit()}


_PASS_METRICS = (
    "hypervisor_scheduling_pass_seconds_count",
    "hypervisor_scheduling_pass_seconds_sum",
    "hypervisor_deployment_starts_total",
    "hypervisor_deployment_preemptions_total",
)


def scheduler_metrics(stack: Stack) -> dict[str, float]:
    """The scheduler's counters from /metrics, added up over the workers."""
    values = dict.fromkeys(_PASS_METRICS, 0.0)
    for line in stack.metrics().splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    return values


def scheduler_metrics_summary(stack: Stack) -> str:
    values = scheduler_metrics(stack)
    passes = values[_PASS_METRICS[0]]
    mean_ms = 1000 * values[_PASS_METRICS[1]] / passes if passes else 0
    return (
        f"/metrics: {passes:.0f} passes (mean {mean_ms:.1f} ms), "
        f"{values[_PASS_METRICS[2]]:.0f} starts, {values[_PASS_METRICS[3]]:.0f} preemptions"
    )


# --- the fault run ---------------------------------------------------------------------


def fault_run(stack: Stack, shape: LoadShape, say: Say = print) -> RunResult:
    result = RunResult()

    def report(line: str) -> None:
        result.lines.append(line)
        say(line)

    org = _set_up(stack, shape, report)
    rngs = [random.Random(shape.seed * 1000 + i) for i in range(len(org.clients))]
    recorder = _use(org, load.Recorder())
    stop = threading.Event()
    supervisor = threading.Thread(target=_supervise, args=(stack, stop, report), daemon=True)
    supervisor.start()
    faults = threading.Thread(target=_inject_faults, args=(stack, result, report), daemon=True)
    began = time.perf_counter()
    faults.start()
    wall = load.run_concurrently(
        org.clients,
        lambda c, i: load.lifecycle(c, rngs[i], org.cluster_ids, shape.lifecycle_ops),
    )
    faults.join()
    report(f"load ended {time.perf_counter() - began:.1f} s after it began; faults done")
    report(
        load.format_stats(
            "lifecycle under faults", load.endpoint_stats(recorder.samples, wall), wall
        )
    )
    stack.wait_ready()
    _finish(stack, org, recorder.samples, result, report)
    line, result.errors_outside_outages = _errors_by_outage(recorder.samples, result.outages)
    report(line)
    stop.set()
    supervisor.join()
    return result


def _errors_by_outage(
    samples: list[load.Sample], outages: list[tuple[float, float]]
) -> tuple[str, int]:
    """Where the 5xx answers fell: during an outage (plus 1 s for answers in flight) or not."""
    names = ["Redis", "PostgreSQL"]
    counts = dict.fromkeys([*names, "outside any outage"], 0)
    for sample in samples:
        if sample.status < 500:
            continue
        during = [n for n, (a, b) in zip(names, outages, strict=False) if a <= sample.at <= b + 1]
        counts[during[0] if during else "outside any outage"] += 1
    line = "5xx by when: " + ", ".join(
        f"during the {k} restart: {v}" if k in names else f"{k}: {v}" for k, v in counts.items()
    )
    return line, counts["outside any outage"]


def _supervise(stack: Stack, stop: threading.Event, report: Say) -> None:
    """What compose's `restart: unless-stopped` does: restart RQ processes that exit."""
    while not stop.wait(0.5):
        for name in stack.revive():
            report(f"  supervisor: {name} had exited; restarted it")


def _inject_faults(stack: Stack, result: RunResult, report: Say) -> None:
    def fault(line: str) -> None:
        result.faults.append(line)
        report(f"  FAULT {line}")

    time.sleep(2)
    fault(kill_worker_mid_pass(stack))
    time.sleep(2)
    for restart in (restart_redis, restart_postgresql):
        began = time.time()
        with ReadinessWatch(stack) as watch:
            fault(restart())
        result.outages.append((began, time.time()))
        report(f"    /readyz meanwhile: {watch.summary()}")
        time.sleep(3)


class ReadinessWatch:
    """Polls /readyz every 50 ms while a fault lasts, and tells what it answered."""

    def __init__(self, stack: Stack) -> None:
        self.url = stack.url + "/readyz"
        self.answers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> ReadinessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.5)  # the first answers after the fault
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        import requests

        while not self._stop.wait(0.05):
            try:
                response = requests.get(self.url, timeout=2)
                failed = response.json().get("failed", [])
                self.answers.append(f"{response.status_code} {failed}" if failed else "200")
            except (requests.RequestException, ValueError):
                self.answers.append("no answer")

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for answer in self.answers:
            counts[answer] = counts.get(answer, 0) + 1
        return ", ".join(f"{answer} x{n}" for answer, n in counts.items())


def kill_worker_mid_pass(stack: Stack, timeout: float = 30) -> str:
    """SIGKILL a worker (and what it forked) while its scheduling pass's transaction is
    open: PostgreSQL shows the worker's session (named `hv-worker<N>`) in a transaction
    while its current RQ job is a pass."""
    import psycopg
    from rq import Worker

    deadline = time.monotonic() + timeout
    with psycopg.connect(f"{stack.config.pg_url}/{stack.config.database}") as db:
        db.autocommit = True
        while time.monotonic() < deadline:
            open_transactions = db.execute(
                "select application_name, extract(epoch from now() - xact_start) "
                "from pg_stat_activity where application_name like 'hv-worker%' "
                "and xact_start is not null and state <> 'idle'"
            ).fetchall()
            for name, age in open_transactions:
                index = int(name.removeprefix("hv-worker"))
                process = stack.workers[index]
                if process is None or process.poll() is not None:
                    continue
                worker = next(
                    (w for w in Worker.all(connection=stack.redis()) if w.pid == process.pid),
                    None,
                )
                job = worker.get_current_job() if worker else None
                if job is None or job.func_name != "scheduler.jobs.schedule_cluster_job":
                    continue
                forked = children_of(process.pid)
                for pid in [process.pid, *forked]:
                    os.kill(pid, signal.SIGKILL)
                process.wait()
                return (
                    f"SIGKILLed RQ worker {index} (pid {process.pid}, and pids {forked} it "
                    f"forked) in {job.func_name}{tuple(job.args)}, its pass's transaction "
                    f"open for {float(age) * 1000:.0f} ms"
                )
            time.sleep(0.002)
    return "no pass transaction was open within 30 s: no worker killed"


REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
]


def restart_redis() -> str:
    began = time.monotonic()
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True)
    time.sleep(1)
    subprocess.run(REDIS_START, check=True, capture_output=True)
    _wait_for(["redis-cli", "-p", "6379", "ping"])
    return f"restarted Redis (shutdown nosave: every queued job and key lost), {time.monotonic() - began:.1f} s down"


def restart_postgresql() -> str:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    began = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
    )
    _wait_for(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"])
    return f"restarted PostgreSQL {version} (every connection dropped), {time.monotonic() - began:.1f} s"


def _wait_for(command: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(command, capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{command[0]} did not come back")
