"""One event at a time (docs/benchmarks.md, issue 14): what a single scheduling event
costs beside a trivial authenticated GET, with W deployments waiting that cannot fit.

One client (a `requests.Session`, like any script):
- a cluster of 4 CPU runs a 3-CPU non-preemptible deployment at the top priority, so
  1 CPU stays free and nothing can preempt it;
- W deployments of 2 CPU at priority 0 wait (they cannot fit in the free CPU);
- an **event**: create a 1-CPU top-priority deployment (it fits), wait until it runs
  (in the embedded shape the create's answer already says so; with workers, poll its
  GET every 2 ms), complete it. Events/s over a block of events;
- a **GET**: `GET /api/v1/auth/me`, the trivial authenticated request. GETs/s over a
  block of GETs.
Rounds alternate a GET block and an event block, so both sample the machine's drift.
The figure is events/s divided by GETs/s, per round and over all rounds.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from devtools.bench import load
from devtools.bench.stack import Stack

TOP = 1_000_000  # API.md's highest priority
CLUSTER = {"capacity": {"cpu": 4, "ram_mb": 16384, "gpu": 0}}
BLOCKER = {"cpu": 3, "ram_mb": 1024, "gpu": 0}
WAITER = {"cpu": 2, "ram_mb": 1024, "gpu": 0}
EVENT = {"cpu": 1, "ram_mb": 512, "gpu": 0}

Say = Callable[[str], None]


@dataclass(frozen=True)
class EventShape:
    waiting: tuple[int, ...] = (0, 1000)  # W, grown in this order on one cluster
    events: int = 100  # per round
    gets: int = 300  # per round
    rounds: int = 3
    policy: str | None = None  # the cluster's; None: the default for new clusters


@dataclass
class Round:
    events_per_second: float
    gets_per_second: float
    start_ms: list[float]  # created_at -> started_at of each event, the server's clocks
    load_average: str

    @property
    def ratio(self) -> float:
        return self.events_per_second / self.gets_per_second


@dataclass
class WaitingResult:
    waiting: int
    fill_seconds: float
    rounds: list[Round] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Over all rounds: total events / event time against total GETs / GET time."""
        events = sum(1 / r.events_per_second for r in self.rounds)
        gets = sum(1 / r.gets_per_second for r in self.rounds)
        return gets / events

    @property
    def start_p50_ms(self) -> float:
        return statistics.median(ms for r in self.rounds for ms in r.start_ms)


def event_run(stack: Stack, shape: EventShape, say: Say = print) -> list[WaitingResult]:
    recorder = load.Recorder()
    org = load.set_up(stack.url, clients=1, clusters=0, recorder=recorder)
    client = org.owner
    spec = {"organization": org.id, "name": "events", **CLUSTER}
    if shape.policy:
        spec["policy"] = shape.policy
    cluster = org.add_cluster(spec)
    blocker = load.create_deployment(
        client, cluster, "blocker", BLOCKER, priority=TOP, preemptible=False
    )
    _wait_running(client, blocker)
    load.gets(client, 20)  # warm both gunicorn workers' connections
    results = []
    waiting = 0
    for target in shape.waiting:
        began = time.perf_counter()
        for index in range(waiting, target):
            load.create_deployment(
                client, cluster, f"wait-{index}", WAITER, priority=0, preemptible=True
            )
        stack.wait_drained()
        fill = time.perf_counter() - began
        waiting = target
        result = WaitingResult(waiting=waiting, fill_seconds=fill)
        say(f"W={waiting}: filled in {fill:.1f} s")
        for number in range(1, shape.rounds + 1):
            done = _round(client, cluster, shape)
            result.rounds.append(done)
            say(
                f"  round {number}: events {done.events_per_second:.1f}/s, GETs "
                f"{done.gets_per_second:.1f}/s, ratio {done.ratio:.2f}, create->running "
                f"p50 {statistics.median(done.start_ms):.1f} ms; load average {done.load_average}"
            )
        say(
            f"W={waiting}: ratio over all rounds {result.ratio:.2f}; create->running p50 "
            f"{result.start_p50_ms:.1f} ms"
        )
        results.append(result)
    errors = load.server_errors(recorder.samples)
    say(f"5xx answers: {errors}; connection errors: {load.connection_errors(recorder.samples)}")
    return results


def _round(client: load.Client, cluster: int, shape: EventShape) -> Round:
    before = _load_average()
    began = time.perf_counter()
    load.gets(client, shape.gets)
    gets_per_second = shape.gets / (time.perf_counter() - began)
    latencies = []
    began = time.perf_counter()
    for index in range(shape.events):
        deployment = load.create_deployment(client, cluster, f"event-{index}", EVENT, priority=TOP)
        shown = _wait_running(client, deployment)
        started, created = (datetime.fromisoformat(shown[k]) for k in ("started_at", "created_at"))
        latencies.append((started - created).total_seconds() * 1000)
        answer = client.call("complete", "POST", f"/api/v1/deployments/{shown['id']}/complete")
        if answer is None or answer.status_code != 200:
            raise RuntimeError(f"complete failed: {answer and answer.text}")
    events_per_second = shape.events / (time.perf_counter() - began)
    return Round(events_per_second, gets_per_second, latencies, f"{before} -> {_load_average()}")


def _wait_running(client: load.Client, deployment: dict, timeout: float = 30) -> dict:
    """The deployment as shown once it runs: the create's answer in the embedded shape,
    else its GET, polled every 2 ms."""
    shown = deployment
    deadline = time.monotonic() + timeout
    while shown["status"] != "running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"deployment {shown['id']} did not start: {shown}")
        time.sleep(0.002)
        answer = client.call("poll", "GET", f"/api/v1/deployments/{shown['id']}")
        shown = answer.json() if answer is not None and answer.status_code == 200 else shown
    return shown


def _load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())
