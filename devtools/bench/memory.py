"""Resident memory of the web and worker processes at a long queue (docs/benchmarks.md,
issue 14).

A cluster of 4 CPU runs a 3-CPU non-preemptible deployment at the top priority; one
2-CPU deployment created through the API waits (it cannot fit), and `waiting - 1` copies
of its row are inserted by one `INSERT … SELECT generate_series` in the stack's database
(each with its own name and a later `queued_at`). Then:
- reads: every gunicorn worker is made to serve (in concurrent pairs of requests,
  `requests` pairs of each read; each worker's CPU time shows it served) the dashboard, its live fragment, the queue
  endpoint (its first page) and the page of the last deployment in the queue;
- a pass: a change on the cluster (a 1-CPU top-priority create, which fits, and its
  completion), then a capacity change (RAM), which always runs the full planner in an
  RQ worker. The workers' resident size is sampled every 20 ms until the queue drains.

Figures per process from /proc/<pid>/status: VmRSS after start, after the fill, after
the reads and the pass, the highest sampled, and VmHWM (the kernel's peak). The stack's
RQ worker class is `scheduler.worker.SchedulerWorker` (rq's SimpleWorker: the pass runs
in the worker process itself); with rq's default class the forked work horses are
sampled too (they are the worker's children).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devtools.bench import load
from devtools.bench.churn import load_average
from devtools.bench.stack import Stack, children_of, process_cpu

TOP = 1_000_000
CLUSTER = {"capacity": {"cpu": 4, "ram_mb": 16384, "gpu": 0}}
BLOCKER = {"cpu": 3, "ram_mb": 1024, "gpu": 0}
WAITER = {"cpu": 2, "ram_mb": 1024, "gpu": 0}
EVENT = {"cpu": 1, "ram_mb": 512, "gpu": 0}

# Copies one deployment's row `count` times: every column but the id, with the name
# numbered and queued_at one millisecond later per copy (the queue's order).
COPY_ROWS = """
from django.db import connection
from deployments.models import Deployment
fields = [f for f in Deployment._meta.concrete_fields if not f.primary_key]
columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
values = ", ".join(
    "name || '-' || g" if f.name == "name"
    else "queued_at + g * interval '1 millisecond'" if f.name == "queued_at"
    else connection.ops.quote_name(f.column)
    for f in fields
)
table = Deployment._meta.db_table
with connection.cursor() as cursor:
    cursor.execute(
        f"INSERT INTO {table} ({columns}) SELECT {values} FROM {table}, "
        f"generate_series(1, %s) AS g WHERE id = %s",
        [COUNT, TEMPLATE],
    )
    cursor.execute(f"ANALYZE {table}")
"""

Say = Callable[[str], None]


@dataclass(frozen=True)
class MemoryShape:
    waiting: int = 100_000
    requests: int = 6  # concurrent pairs of each read


@dataclass
class Process:
    role: str
    pid: int
    rss_kb: dict[str, int] = field(default_factory=dict)  # by moment
    sampled_max_kb: int = 0
    hwm_kb: int = 0


@dataclass
class MemoryResult:
    processes: list[Process]
    waiting: int = 0
    fill_seconds: float = 0.0
    reads: dict[str, tuple[float, int]] = field(default_factory=dict)  # p50 s, bytes
    pass_seconds: float = 0.0
    passes: int = 0  # during the change and the capacity change
    web_cpu_seconds: dict[int, float] = field(default_factory=dict)  # during the reads
    loads: dict[str, str] = field(default_factory=dict)

    def table(self) -> str:
        moments = ["started", "filled", "after"]
        lines = [
            "| process | pid | VmRSS started | VmRSS filled | VmRSS after reads+pass "
            "| sampled max | VmHWM |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in self.processes:
            cells = [_mb(p.rss_kb[m]) if m in p.rss_kb else "" for m in moments]
            sampled = _mb(p.sampled_max_kb) if p.sampled_max_kb else ""
            lines.append(
                f"| {p.role} | {p.pid} | {' | '.join(cells)} | {sampled} | {_mb(p.hwm_kb)} |"
            )
        return "\n".join(lines)


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def status_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in kB ({} if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    figures = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0])
    return figures


def memory_run(stack: Stack, shape: MemoryShape, say: Say = print) -> MemoryResult:
    recorder = load.Recorder()
    web = sorted(children_of(stack.web.pid))
    processes = [Process("gunicorn worker", pid) for pid in web]
    processes += [Process("rq worker", p.pid) for p in stack.workers if p is not None]
    result = MemoryResult(processes)
    _read(result, "started")

    org = load.set_up(stack.url, clients=1, clusters=0, recorder=recorder)
    owner = org.owner
    cluster = org.add_cluster({"organization": org.id, "name": "memory", **CLUSTER})
    _running(
        owner,
        load.create_deployment(owner, cluster, "blocker", BLOCKER, priority=TOP, preemptible=False)[
            "id"
        ],
    )
    template = load.create_deployment(owner, cluster, "wait", WAITER, priority=0)["id"]
    stack.wait_drained()
    began = time.perf_counter()
    code = COPY_ROWS.replace("COUNT", str(shape.waiting - 1)).replace("TEMPLATE", str(template))
    stack.manage("shell", "-c", code, timeout=1800)
    result.fill_seconds = time.perf_counter() - began
    queue = f"/api/v1/clusters/{cluster}/queue"
    answer = owner.call("queue", "GET", f"{queue}?limit=1")
    result.waiting = int(answer.headers["X-Total-Count"])
    result.loads["filled"] = load_average()
    say(f"{result.waiting} waiting, inserted in {result.fill_seconds:.1f} s; load {load_average()}")
    _read(result, "filled")

    last = owner.call("last", "GET", f"{queue}?offset={result.waiting - 1}&limit=1").json()
    reads = {
        "dashboard": f"/orgs/{org.id}/",
        "dashboard live fragment": f"/orgs/{org.id}/live/",
        "GET …/queue (first 500)": queue,
        "deployment page (last queued)": f"/deployments/{last[0]['deployment']['id']}/",
    }
    cpu = {pid: process_cpu(pid) for pid in web}
    for name, path in reads.items():
        result.reads[name] = _serve(owner, path, shape.requests)
        say(f"  {name}: p50 {result.reads[name][0] * 1000:.0f} ms, {result.reads[name][1]} bytes")
    result.loads["reads"] = load_average()
    result.web_cpu_seconds = {pid: process_cpu(pid) - cpu[pid] for pid in web}
    say(f"  CPU seconds of each gunicorn worker during the reads: {result.web_cpu_seconds}")

    sampler = _Sampler([p.pid for p in processes if p.role == "rq worker"])
    sampler.start()
    passes = _passes(stack)
    began = time.perf_counter()
    event = load.create_deployment(owner, cluster, "event", EVENT, priority=TOP)["id"]
    _running(owner, event)
    owner.call("complete", "POST", f"/api/v1/deployments/{event}/complete")
    capacity = {"capacity": {**CLUSTER["capacity"], "ram_mb": 16000}}
    patched = owner.call("patch", "PATCH", f"/api/v1/clusters/{cluster}", capacity)
    if patched is None or patched.status_code != 200:
        raise RuntimeError(f"the capacity change failed: {patched and patched.text}")
    stack.wait_drained(timeout=1800)
    result.pass_seconds = time.perf_counter() - began
    sampler.stop()
    count, seconds = (now - then for now, then in zip(_passes(stack), passes, strict=True))
    result.passes = int(count)
    say(f"{count:.0f} passes ran meanwhile, {seconds:.2f} s in all (the pass histogram)")
    _adopt_children(result, sampler.parent)
    for process in processes:
        process.sampled_max_kb = sampler.highest.get(process.pid, 0)
    result.loads["pass"] = load_average()
    say(
        f"the change and the full pass drained in {result.pass_seconds:.1f} s; load {load_average()}"
    )
    _read(result, "after")
    errors = load.server_errors(recorder.samples)
    if errors:
        raise RuntimeError(f"{errors} answers were 5xx")
    return result


def _passes(stack: Stack) -> tuple[float, float]:
    """How many passes ran so far and their seconds, from the web's /metrics."""
    figures = {"_count": 0.0, "_sum": 0.0}
    for line in stack.metrics().splitlines():
        name, _, value = line.partition(" ")
        for suffix in figures:
            if name == f"hypervisor_scheduling_pass_seconds{suffix}":
                figures[suffix] = float(value)
    return figures["_count"], figures["_sum"]


def _adopt_children(result: MemoryResult, parents: dict[int, int]) -> None:
    """Add the RQ workers' children not yet in the table (rq's scheduler process, forked
    by a worker started `--with-scheduler`; a work horse, with rq's default class)."""
    known = {p.pid for p in result.processes}
    for child, parent in sorted(parents.items()):
        if child not in known:
            result.processes.append(Process(f"child of rq worker {parent}", child))


def _read(result: MemoryResult, moment: str) -> None:
    workers = [p.pid for p in result.processes if p.role == "rq worker"]
    _adopt_children(result, {child: pid for pid in workers for child in children_of(pid)})
    for process in result.processes:
        figures = status_kb(process.pid)
        process.rss_kb[moment] = figures.get("VmRSS", 0)
        process.hwm_kb = figures.get("VmHWM", process.hwm_kb)


class _Sampler(threading.Thread):
    """Samples the resident size of processes and of their children every 20 ms: the
    highest of each pid, kept by pid (a child: rq's scheduler, a forked work horse)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.highest: dict[int, int] = {}  # kB by pid
        self.parent: dict[int, int] = {}  # of a child
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for pid in self.pids:
                children = children_of(pid)
                self.parent.update(dict.fromkeys(children, pid))
                for each in [pid, *children]:
                    rss = status_kb(each).get("VmRSS", 0)
                    self.highest[each] = max(self.highest.get(each, 0), rss)
            self.done.wait(0.02)

    def stop(self) -> None:
        self.done.set()
        self.join()


def _serve(client: load.Client, path: str, pairs: int) -> tuple[float, int]:
    """GET `path` in `pairs` pairs of concurrent requests on two sessions (a sync
    gunicorn worker serves one request at a time, so the other worker takes the second
    of a pair); the median seconds and the answer's size."""
    other = load.Client(client.base_url, client.username, client.recorder, timeout=600)
    other.session.cookies.update(client.session.cookies)
    seconds, sizes = [], []

    def get(session: load.Client, _: int) -> None:
        began = time.perf_counter()
        answer = session.call(path, "GET", path)
        seconds.append(time.perf_counter() - began)
        if answer is None or answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer and answer.status_code}")
        sizes.append(len(answer.content))

    for _ in range(pairs):
        load.run_concurrently([client, other], get)
    if len(sizes) != 2 * pairs:
        raise RuntimeError(f"{path}: {2 * pairs - len(sizes)} requests failed")
    return sorted(seconds)[len(seconds) // 2], sizes[-1]


def _running(client: load.Client, deployment: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.call("poll", "GET", f"/api/v1/deployments/{deployment}")
        if answer is not None and answer.status_code == 200 and _runs(answer):
            return
        time.sleep(0.01)
    raise RuntimeError(f"deployment {deployment} did not start")


def _runs(answer) -> bool:
    return answer.json()["status"] == "running"
