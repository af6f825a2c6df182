"""The churn of concurrent clients and the start latency under load (docs/benchmarks.md,
issue 14).

A **change** is one write that the scheduler must answer: a create (201) or the
completion (200) of one of the client's own running deployments. Each client keeps at
about `OUTSTANDING` deployments of 1 CPU on its cluster, so 8 clients on an 8-CPU cluster
keep some waiting: a completion frees room a waiting one takes. A client that should
complete but knows none of its own running reads its oldest (`GET /deployments/{id}`,
counted as polls: part of the cost of the churn, not a change).

- `churn_run`: rounds alternate `clients` concurrent clients each doing `gets` trivial
  authenticated GETs (`/api/v1/auth/me`), and the same clients each doing `changes`
  changes on one cluster. The figure is changes/s divided by GETs/s, per round and over
  all rounds.
- `latency_run`: create -> running (the deployment's `created_at` -> `started_at`, the
  server's clocks) for one user on cluster A, first on an idle stack, then while
  `streamers` other clients stream changes onto cluster B at a steady total rate.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from devtools.bench import load
from devtools.bench.runs import cpu_per_request
from devtools.bench.stack import Stack

OUTSTANDING = 2  # past this many of its own, a churn client completes one if it can
CLUSTER = {"capacity": {"cpu": 8, "ram_mb": 32768, "gpu": 0}}
ONE_CPU = {"cpu": 1, "ram_mb": 512, "gpu": 0}

Say = Callable[[str], None]


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


class Changer:
    """One client's changes on one cluster: create, or complete one of its own running."""

    def __init__(self, client: load.Client, cluster: int, seed: int) -> None:
        self.client = client
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.outstanding: list[int] = []  # created, not completed, oldest first
        self.running: set[int] = set()  # of those, the ones last seen running
        self.creates = 0
        self.completes = 0
        self.polls = 0
        self.refused: list[str] = []  # an unexpected answer, with its text

    def change(self) -> None:
        """Make one change: complete one of its own running deployments, or create one.

        At `OUTSTANDING` the client completes, if one of its own runs (its oldest read
        again when none is known to); else it creates all the same, so that no client ever waits
        for another's completion (the queue may grow: the run reports how many wait)."""
        full = len(self.outstanding) >= OUTSTANDING
        if full and not self.running:
            self._refresh()
        if self.running and (full or self.rng.random() < 0.5):
            self._complete(min(self.running))
        else:
            self._create()

    def _create(self) -> None:
        body = {
            "cluster": self.cluster,
            "name": f"churn-{self.rng.randrange(10**6)}",
            "image": load.IMAGES[0],
            "resources": ONE_CPU,
            "preemptible": False,
        }
        answer = self.client.call("create", "POST", "/api/v1/deployments", body)
        if answer is None or answer.status_code != 201:
            self.refused.append(f"create: {answer and answer.status_code} {answer and answer.text}")
            return
        shown = answer.json()
        self.outstanding.append(shown["id"])
        if shown["status"] == "running":
            self.running.add(shown["id"])
        self.creates += 1

    def _refresh(self) -> None:
        """Read the oldest of its own not known to run: within a priority the queue is
        in creation order, so it is the first of the client's to start."""
        deployment = next(d for d in self.outstanding if d not in self.running)
        answer = self.client.call("poll", "GET", f"/api/v1/deployments/{deployment}")
        self.polls += 1
        if answer is not None and answer.status_code == 200 and _runs(answer):
            self.running.add(deployment)

    def _complete(self, deployment: int) -> None:
        answer = self.client.call("complete", "POST", f"/api/v1/deployments/{deployment}/complete")
        self.running.discard(deployment)
        if answer is None or answer.status_code != 200:
            self.refused.append(f"complete: {answer and answer.status_code}")
            return
        self.outstanding.remove(deployment)
        self.completes += 1

    @property
    def changes(self) -> int:
        return self.creates + self.completes


# --- the churn -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChurnShape:
    clients: int = 8
    changes: int = 40  # per client and round
    gets: int = 60  # per client and round
    rounds: int = 3


@dataclass
class ChurnRound:
    changes: int
    change_seconds: float
    gets: int
    get_seconds: float
    polls: int
    load_average: str

    @property
    def changes_per_second(self) -> float:
        return self.changes / self.change_seconds

    @property
    def gets_per_second(self) -> float:
        return self.gets / self.get_seconds

    @property
    def ratio(self) -> float:
        return self.changes_per_second / self.gets_per_second


@dataclass
class ChurnResult:
    rounds: list[ChurnRound] = field(default_factory=list)
    creates: int = 0
    completes: int = 0
    refused: list[str] = field(default_factory=list)
    server_errors: int = 0
    connection_errors: int = 0
    logged_5xx: int = 0
    waiting_at_end: int = 0

    @property
    def ratio(self) -> float:
        """Over all rounds: all changes / their time against all GETs / their time."""
        changes = sum(r.changes for r in self.rounds) / sum(r.change_seconds for r in self.rounds)
        gets = sum(r.gets for r in self.rounds) / sum(r.get_seconds for r in self.rounds)
        return changes / gets


def churn_run(stack: Stack, shape: ChurnShape, say: Say = print) -> ChurnResult:
    recorder = load.Recorder()
    org = load.set_up(stack.url, clients=shape.clients, clusters=0, recorder=recorder)
    cluster = org.add_cluster({"organization": org.id, "name": "churn", **CLUSTER})
    changers = [Changer(c, cluster, seed) for seed, c in enumerate(org.clients)]
    load.run_concurrently(org.clients, lambda client, _: load.gets(client, 5))  # warm up
    result = ChurnResult()
    for number in range(1, shape.rounds + 1):
        before, cpu = load_average(), stack.cpu_seconds()
        get_seconds = load.run_concurrently(
            org.clients, lambda client, _: load.gets(client, shape.gets)
        )
        gets = shape.clients * shape.gets
        get_cpu, cpu = cpu_per_request(cpu, stack.cpu_seconds(), gets), stack.cpu_seconds()
        done, polls = sum(c.changes for c in changers), sum(c.polls for c in changers)
        change_seconds = load.run_concurrently(
            org.clients,
            lambda _, index: [changers[index].change() for _ in range(shape.changes)],
        )
        done = sum(c.changes for c in changers) - done
        polls = sum(c.polls for c in changers) - polls
        change_cpu = cpu_per_request(cpu, stack.cpu_seconds(), done)
        churn = ChurnRound(
            done, change_seconds, gets, get_seconds, polls, f"{before} -> {load_average()}"
        )
        result.rounds.append(churn)
        say(
            f"round {number}: changes {churn.changes_per_second:.1f}/s ({done} in "
            f"{change_seconds:.2f} s, {polls} polls: {(done + polls) / change_seconds:.1f} "
            f"requests/s), GETs {churn.gets_per_second:.1f}/s "
            f"({gets} in {get_seconds:.2f} s), ratio {churn.ratio:.2f}; "
            f"load average {churn.load_average}"
        )
        say(
            f"  CPU ms per GET: {get_cpu}\n  CPU ms per change (its polls and passes in): {change_cpu}"
        )
    stack.wait_drained()
    result.creates = sum(c.creates for c in changers)
    result.completes = sum(c.completes for c in changers)
    result.refused = [text for c in changers for text in c.refused]
    result.server_errors = load.server_errors(recorder.samples)
    result.connection_errors = load.connection_errors(recorder.samples)
    result.logged_5xx = stack.count_5xx_in_logs()
    queue = org.owner.call("queue", "GET", f"/api/v1/clusters/{cluster}/queue?limit=1")
    result.waiting_at_end = int(queue.headers["X-Total-Count"])
    say(
        f"over all rounds: ratio {result.ratio:.2f}; {result.creates} creates, "
        f"{result.completes} completions, {len(result.refused)} refused; waiting at the end "
        f"{result.waiting_at_end}; 5xx answers {result.server_errors} (logged "
        f"{result.logged_5xx}), connection errors {result.connection_errors}"
    )
    return result


# --- latency under load --------------------------------------------------------------


@dataclass(frozen=True)
class LatencyShape:
    samples: int = 100  # per phase
    pause: float = 0.05  # seconds between one sample's completion and the next create
    streamers: int = 8  # clients changing cluster B
    rate: float = 20.0  # changes/s onto cluster B, all streamers together


@dataclass
class LatencyResult:
    idle_ms: list[float] = field(default_factory=list)
    busy_ms: list[float] = field(default_factory=list)
    busy_changes: int = 0
    busy_seconds: float = 0.0
    idle_load: str = ""
    busy_load: str = ""
    server_errors: int = 0
    refused: list[str] = field(default_factory=list)

    @property
    def busy_rate(self) -> float:
        return self.busy_changes / self.busy_seconds if self.busy_seconds else 0.0


def latency_run(stack: Stack, shape: LatencyShape, say: Say = print) -> LatencyResult:
    recorder = load.Recorder()
    org = load.set_up(stack.url, clients=1 + shape.streamers, clusters=0, recorder=recorder)
    user, streamers = org.owner, org.members
    cluster_a = org.add_cluster({"organization": org.id, "name": "a", **CLUSTER})
    cluster_b = org.add_cluster({"organization": org.id, "name": "b", **CLUSTER})
    load.gets(user, 10)
    result = LatencyResult()
    before = load_average()
    result.idle_ms = _samples(user, cluster_a, shape)
    result.idle_load = f"{before} -> {load_average()}"
    say(_summary("idle", result.idle_ms, result.idle_load))

    changers = [Changer(c, cluster_b, seed) for seed, c in enumerate(streamers)]
    stop = threading.Event()
    period = shape.streamers / shape.rate  # seconds between one streamer's changes

    def stream(changer: Changer) -> None:
        due = time.monotonic()
        while not stop.is_set():
            changer.change()
            due += period
            time.sleep(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic() - period)  # fallen behind: no burst to catch up

    threads = [threading.Thread(target=stream, args=(c,), daemon=True) for c in changers]
    for thread in threads:
        thread.start()
    time.sleep(2)  # the stream settles before the first sample
    before, began, changes = load_average(), time.monotonic(), sum(c.changes for c in changers)
    result.busy_ms = _samples(user, cluster_a, shape)
    result.busy_seconds = time.monotonic() - began
    result.busy_changes = sum(c.changes for c in changers) - changes
    result.busy_load = f"{before} -> {load_average()}"
    stop.set()
    for thread in threads:
        thread.join()
    say(
        _summary("cluster B busy", result.busy_ms, result.busy_load)
        + f"; B took {result.busy_rate:.1f} changes/s (asked {shape.rate:g})"
    )
    stack.wait_drained()
    result.server_errors = load.server_errors(recorder.samples)
    result.refused = [text for c in changers for text in c.refused]
    say(f"5xx answers: {result.server_errors}; refused changes on B: {len(result.refused)}")
    return result


def _samples(user: load.Client, cluster: int, shape: LatencyShape) -> list[float]:
    """create -> running of `shape.samples` deployments on `cluster`, one at a time, each
    completed before the next; milliseconds by the server's clocks."""
    latencies = []
    for index in range(shape.samples):
        body = {
            "cluster": cluster,
            "name": f"latency-{index}",
            "image": load.IMAGES[0],
            "resources": ONE_CPU,
        }
        answer = user.call("create", "POST", "/api/v1/deployments", body)
        if answer is None or answer.status_code != 201:
            raise RuntimeError(f"create failed: {answer and answer.text}")
        shown = answer.json()
        deadline = time.monotonic() + 30
        while shown["status"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployment {shown['id']} did not start: {shown}")
            time.sleep(0.002)
            polled = user.call("poll", "GET", f"/api/v1/deployments/{shown['id']}")
            shown = polled.json() if polled is not None and polled.status_code == 200 else shown
        started, created = (datetime.fromisoformat(shown[k]) for k in ("started_at", "created_at"))
        latencies.append((started - created).total_seconds() * 1000)
        done = user.call("complete", "POST", f"/api/v1/deployments/{shown['id']}/complete")
        if done is None or done.status_code != 200:
            raise RuntimeError(f"complete failed: {done and done.text}")
        time.sleep(shape.pause)
    return latencies


def _summary(name: str, values: list[float], load_text: str) -> str:
    return (
        f"{name}: create -> running p50 {statistics.median(values):.1f} ms, p99 "
        f"{load.percentile(values, 99):.1f} ms, max {max(values):.1f} ms over {len(values)}; "
        f"load average {load_text}"
    )


def _runs(answer) -> bool:
    return answer.json()["status"] == "running"
