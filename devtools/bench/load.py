"""The load: threaded HTTP clients (requests.Session each), logged in as members of one
organization, creating, completing, failing and cancelling deployments on its clusters.

Every request is recorded (endpoint, status, seconds); connection failures are status 0.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import requests

PASSWORD = "load-run-Passw0rd!"
IMAGES = ["registry.example.com:5000/team/trainer:1.4", "python:3.11", "ghcr.io/acme/infer:2"]


@dataclass(frozen=True)
class Sample:
    endpoint: str
    status: int
    seconds: float
    at: float = 0.0  # wall-clock time of the answer (time.time())


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)  # list.append is atomic under the GIL


class Client:
    """One user with a session cookie and the CSRF header, like a script of a user's."""

    def __init__(self, base_url: str, username: str, recorder: Recorder, timeout: float = 30):
        self.base_url = base_url
        self.username = username
        self.recorder = recorder
        self.timeout = timeout
        self.session = requests.Session()
        self.created: list[int] = []  # ids answered 201
        self.active: list[int] = []  # created and not yet seen finished

    def call(self, endpoint: str, method: str, path: str, body=None) -> requests.Response | None:
        headers = {}
        token = self.session.cookies.get("csrftoken")
        if method != "GET" and token:
            headers["X-CSRFToken"] = token
        began = time.perf_counter()
        try:
            response = self.session.request(
                method, self.base_url + path, json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException:
            self.recorder.add(Sample(endpoint, 0, time.perf_counter() - began, time.time()))
            return None
        elapsed = time.perf_counter() - began
        self.recorder.add(Sample(endpoint, response.status_code, elapsed, time.time()))
        return response

    def sign_up(self) -> None:
        self.call("csrf", "GET", "/api/v1/auth/csrf")
        body = {"username": self.username, "password": PASSWORD}
        self.call("register", "POST", "/api/v1/auth/register", body)
        self.log_in()

    def log_in(self) -> None:
        if "csrftoken" not in self.session.cookies:
            self.call("csrf", "GET", "/api/v1/auth/csrf")
        body = {"username": self.username, "password": PASSWORD}
        response = self.call("login", "POST", "/api/v1/auth/login", body)
        if response is None or response.status_code != 200:
            raise RuntimeError(f"login of {self.username} failed: {response and response.text}")


@dataclass
class Organization:
    id: int
    owner: Client
    members: list[Client]
    cluster_ids: list[int]

    @property
    def clients(self) -> list[Client]:
        return [self.owner, *self.members]

    def add_clusters(self, count: int, *, prefix: str) -> list[int]:
        """Create `count` clusters shaped as CLUSTERS (in its order); their ids."""
        ids = []
        for index in range(count):
            spec = {"organization": self.id, "name": f"{prefix}-{index}", **CLUSTERS[index % 4]}
            ids.append(self.add_cluster(spec))
        return ids

    def add_cluster(self, spec: dict) -> int:
        response = self.owner.call("cluster", "POST", "/api/v1/clusters", spec)
        if response is None or response.status_code != 201:
            raise RuntimeError(f"creating a cluster failed: {response and response.text}")
        return response.json()["id"]


CLUSTERS = [
    {"capacity": {"cpu": 16, "ram_mb": 65536, "gpu": 4}, "policy": "fifo"},
    {"capacity": {"cpu": 8, "ram_mb": 32768, "gpu": 0}, "policy": "fifo"},
    {"capacity": {"cpu": 32, "ram_mb": 131072, "gpu": 8}, "policy": "pack"},
    {
        "capacity": {"cpu": 12, "ram_mb": 49152, "gpu": 2},
        "policy": "fifo",
        "starvation_after_seconds": 20,
    },
]


def set_up(base_url: str, *, clients: int, clusters: int, recorder: Recorder) -> Organization:
    """Users, one organization (the first user owns it, the others join as developers),
    and its clusters."""
    tag = f"{int(time.time() * 1000) % 10**9}"
    owner = Client(base_url, f"owner{tag}", recorder)
    owner.sign_up()
    org = owner.call("org", "POST", "/api/v1/organizations", {"name": f"load {tag}"}).json()
    organization = Organization(org["id"], owner, [], [])
    organization.cluster_ids = organization.add_clusters(clusters, prefix="cluster")
    for index in range(clients - 1):
        member = Client(base_url, f"dev{index}x{tag}", recorder)
        member.sign_up()
        body = {"invite_code": org["invite_code"]}
        member.call("join", "POST", "/api/v1/organizations/join", body)
        organization.members.append(member)
    return organization


def start_latencies(client: Client, cluster_id: int, *, samples: int, pause: float) -> list[float]:
    """Seconds from a create to its start on an idle cluster with room: `samples` creates,
    one at a time, each `pause` seconds after the previous one started. Measured from
    the deployment's own `created_at` and `started_at` (the server's clocks)."""
    latencies = []
    for index in range(samples):
        body = {
            "cluster": cluster_id,
            "name": f"latency-{index}",
            "image": IMAGES[0],
            "resources": {"cpu": 0.25, "ram_mb": 256, "gpu": 0},
        }
        created = client.call("POST /deployments (latency)", "POST", "/api/v1/deployments", body)
        if created is None or created.status_code != 201:
            raise RuntimeError(f"a latency create failed: {created and created.text}")
        path = f"/api/v1/deployments/{created.json()['id']}"
        deadline = time.monotonic() + 30
        while True:
            shown = client.session.get(client.base_url + path, timeout=client.timeout).json()
            if shown["status"] == "running":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployment {shown['id']} did not start: {shown}")
            time.sleep(0.005)
        started, created = (datetime.fromisoformat(shown[k]) for k in ("started_at", "created_at"))
        latencies.append((started - created).total_seconds())
        time.sleep(pause)
    return latencies


def deployment_body(rng: random.Random, client: Client, cluster_ids: list[int]) -> dict:
    body = {
        "cluster": rng.choice(cluster_ids),
        "name": f"job-{rng.randrange(10**6)}",
        "image": rng.choice(IMAGES),
        "resources": {
            "cpu": rng.choice([0.25, 0.5, 1, 2, 4]),
            "ram_mb": rng.choice([256, 1024, 4096]),
            "gpu": 0,
        },
        "priority": rng.choice([0, 0, 10, 100, 1000]),
        "preemptible": rng.random() < 0.8,
    }
    if body["cluster"] != cluster_ids[1] and rng.random() < 0.15:
        body["resources"]["gpu"] = 1
    if client.active and rng.random() < 0.2:
        body["depends_on"] = [
            {
                "deployment": rng.choice(client.active[-5:]),
                "condition": rng.choice(["succeeded", "finished", "failed"]),
            }
        ]
    return body


def create_one(client: Client, rng: random.Random, cluster_ids: list[int]) -> None:
    response = client.call(
        "POST /deployments",
        "POST",
        "/api/v1/deployments",
        deployment_body(rng, client, cluster_ids),
    )
    if response is not None and response.status_code == 201:
        deployment_id = response.json()["id"]
        client.created.append(deployment_id)
        client.active.append(deployment_id)


def create_deployment(
    client: Client,
    cluster: int,
    name: str,
    resources: dict,
    *,
    priority: int,
    preemptible: bool = True,
) -> dict:
    """Create a deployment through the API; its answer (201), or RuntimeError."""
    body = {
        "cluster": cluster,
        "name": name,
        "image": IMAGES[0],
        "resources": resources,
        "priority": priority,
        "preemptible": preemptible,
    }
    answer = client.call("create", "POST", "/api/v1/deployments", body)
    if answer is None or answer.status_code != 201:
        raise RuntimeError(f"create failed: {answer and answer.text}")
    return answer.json()


def finish_one(client: Client, rng: random.Random) -> None:
    """Complete, fail or cancel one of the client's own deployments. Completing or
    failing one that is not running is 409; then the client cancels it instead."""
    deployment_id = rng.choice(client.active)
    roll = rng.random()
    action = "complete" if roll < 0.6 else "fail" if roll < 0.8 else "cancel"
    path = f"/api/v1/deployments/{deployment_id}/{action}"
    response = client.call(f"POST /deployments/{{id}}/{action}", "POST", path)
    if response is not None and response.status_code == 409 and action != "cancel":
        path = f"/api/v1/deployments/{deployment_id}/cancel"
        response = client.call("POST /deployments/{id}/cancel", "POST", path)
    if response is not None and response.status_code in (200, 409):
        client.active.remove(deployment_id)


def lifecycle(client: Client, rng: random.Random, cluster_ids: list[int], ops: int) -> None:
    for _ in range(ops):
        if not client.active or rng.random() < 0.5:
            create_one(client, rng, cluster_ids)
        else:
            finish_one(client, rng)


def creates(client: Client, rng: random.Random, cluster_ids: list[int], ops: int) -> None:
    for _ in range(ops):
        create_one(client, rng, cluster_ids)


def gets(client: Client, ops: int) -> None:
    for _ in range(ops):
        client.call("GET /auth/me", "GET", "/api/v1/auth/me")


def run_concurrently(clients: list[Client], work: Callable[[Client, int], None]) -> float:
    """Run `work(client, index)` on one thread per client; return the wall time."""
    threads = [
        threading.Thread(target=work, args=(client, index), daemon=True)
        for index, client in enumerate(clients)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


# --- reporting -------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointStats:
    endpoint: str
    count: int
    per_second: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def endpoint_stats(samples: list[Sample], wall: float) -> list[EndpointStats]:
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_endpoint[sample.endpoint].append(sample)
    stats = []
    for endpoint, group in sorted(by_endpoint.items()):
        times = sorted(s.seconds for s in group)
        stats.append(
            EndpointStats(
                endpoint=endpoint,
                count=len(group),
                per_second=len(group) / wall if wall else 0.0,
                p50_ms=percentile(times, 50) * 1000,
                p99_ms=percentile(times, 99) * 1000,
                statuses=dict(sorted(Counter(s.status for s in group).items())),
            )
        )
    return stats


def format_stats(title: str, stats: list[EndpointStats], wall: float) -> str:
    lines = [f"{title} ({wall:.2f} s)"]
    lines.append(f"  {'endpoint':34} {'n':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for s in stats:
        statuses = " ".join(f"{code}:{n}" for code, n in s.statuses.items())
        lines.append(
            f"  {s.endpoint:34} {s.count:>6} {s.per_second:>8.1f} {s.p50_ms:>8.1f} "
            f"{s.p99_ms:>8.1f}  {statuses}"
        )
    return "\n".join(lines)


def server_errors(samples: list[Sample]) -> int:
    return sum(1 for s in samples if s.status >= 500)


def connection_errors(samples: list[Sample]) -> int:
    return sum(1 for s in samples if s.status == 0)
