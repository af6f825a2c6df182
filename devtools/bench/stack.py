"""A production-shaped stack on loopback: gunicorn (2 workers), RQ workers, rqcron.

Each run gets its own PostgreSQL database and, unless given a Redis URL, its own
redis-server on a unix socket in its directory, so that it never touches the test
suite's (or another run's) keys. gunicorn serves a socket this process bound to port 0
and hands over (`fd://`), so no port is guessed. Processes are started and stopped by
pid; nothing else is signalled.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import redis
import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@dataclass
class StackConfig:
    database: str = "hv_load"
    pg_url: str = "postgres://postgres@127.0.0.1:5432"
    # None: a private redis-server for this stack alone (the test suite's runs).
    redis_url: str | None = None
    drop_database_after: bool = False
    web_workers: int = 2
    rq_workers: int = 2
    safety_net_seconds: int = 3
    log_level: str = "INFO"
    # RQ worker class, as in docker-compose.yml; None: rq's default (a work horse forked
    # per job, which costs a fork and a new database connection per pass).
    worker_class: str | None = "scheduler.worker.SchedulerWorker"
    extra_env: dict[str, str] = field(default_factory=dict)
    # No Redis, no RQ workers, no rqcron: every pass runs in the web process right after
    # the commit that asked for it, as in the embedded default (on PostgreSQL here).
    embedded: bool = False


def waiting_limits(waiting: int) -> dict[str, str]:
    """`extra_env` that lets `waiting` deployments wait on one cluster and more in the
    organization (the defaults, 1,000 and 5,000, refuse creates beyond them)."""
    return {
        "DEPLOYMENT_MAX_WAITING_PER_CLUSTER": str(waiting + 1000),
        "DEPLOYMENT_MAX_WAITING_PER_ORGANIZATION": str(waiting + 5000),
    }


class Stack:
    """Start with `with Stack(config) as stack:`; `stack.url` is the web's base URL."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.dir = Path(tempfile.mkdtemp(prefix="hv-stack-"))
        # Bound and listening before gunicorn starts, kept open until the stack stops:
        # the port is ours from the first moment, and gunicorn inherits the socket.
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.set_inheritable(True)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_url = config.redis_url or f"unix://{self.dir / 'redis.sock'}?db=0"
        self.redis_server: subprocess.Popen | None = None
        self.metrics_token = secrets.token_urlsafe(16)
        self.web: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen | None] = [None] * (
            0 if config.embedded else config.rq_workers
        )
        self.cron: subprocess.Popen | None = None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "DATABASE_URL": f"{config.pg_url}/{config.database}",
            "REDIS_URL": "" if config.embedded else self.redis_url,
            "SECRET_KEY": "load-run-" + secrets.token_urlsafe(24),
            "DEBUG": "false",
            "RATELIMIT_ENABLE": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Plain HTTP on loopback: cookies without the Secure flag, no HTTPS redirect.
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "SECURE_SSL_REDIRECT": "false",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": config.log_level,
            "METRICS_TOKEN": self.metrics_token,
            "PROMETHEUS_MULTIPROC_DIR": str(self.dir / "metrics"),
            "SCHEDULER_SAFETY_NET_SECONDS": str(config.safety_net_seconds),
            "GUNICORN_BIND": f"fd://{self.listener.fileno()}",
            "WEB_CONCURRENCY": str(config.web_workers),
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            **config.extra_env,
        }
        (self.dir / "metrics").mkdir()

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Stack:
        self.prepare()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _pg(self) -> list[str]:
        host = urlsplit(self.config.pg_url)
        return [
            *("-h", host.hostname or "127.0.0.1", "-p", str(host.port or 5432)),
            *("-U", host.username or "postgres"),
        ]

    def prepare(self) -> None:
        """A fresh database (dropped and created) and an empty Redis database."""
        pg = self._pg()
        subprocess.run(["dropdb", *pg, "--if-exists", "--force", self.config.database], check=True)
        subprocess.run(["createdb", *pg, self.config.database], check=True)
        if not self.config.embedded:
            if self.config.redis_url is None:
                self._start_private_redis()
            self.redis().flushdb()
        self.manage("migrate", "--noinput", "-v", "0")

    def _start_private_redis(self) -> None:
        socket_path = self.dir / "redis.sock"
        command = ["redis-server", "--port", "0", "--unixsocket", str(socket_path)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        self.redis_server = self._spawn("redis", command)
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if self.redis_server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.dir / 'redis.log'}")
            time.sleep(0.05)

    def start(self) -> None:
        self.web = self._spawn(
            "web",
            [PYTHON, "-m", "gunicorn", "hypervisor.wsgi"],
            pass_fds=(self.listener.fileno(),),
        )
        for index in range(len(self.workers)):
            self.start_worker(index)
        if not self.config.embedded:
            self.start_cron()
        self.wait_ready()

    def start_worker(self, index: int) -> None:
        command = [PYTHON, "manage.py", "rqworker", "--with-scheduler", "default"]
        if self.config.worker_class:
            command[3:3] = ["--worker-class", self.config.worker_class]
        # The worker's database sessions carry its name, so that a fault run can see
        # when one has a transaction open (pg_stat_activity.application_name).
        url = f"{self.env['DATABASE_URL']}?application_name=hv-worker{index}"
        self.workers[index] = self._spawn(f"worker{index}", command, DATABASE_URL=url)

    def start_cron(self) -> None:
        self.cron = self._spawn("cron", [PYTHON, "manage.py", "rqcron", "scheduler.cron"])

    def stop(self) -> None:
        for process in [self.web, self.cron, *self.workers]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [self.web, self.cron, *self.workers]:
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.listener.close()
        if self.redis_server is not None:
            self.redis_server.terminate()
            self.redis_server.wait(timeout=30)
        if self.config.drop_database_after:
            dropdb = ["dropdb", *self._pg(), "--if-exists", "--force", self.config.database]
            subprocess.run(dropdb, check=True)

    def _spawn(
        self, name: str, command: list[str], pass_fds: tuple[int, ...] = (), **env: str
    ) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 (lives with the process)
        env = {**self.env, **env}
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=log, pass_fds=pass_fds
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.web is not None and self.web.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.dir / 'web.log'}")
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the stack was not ready in {timeout} s; see {self.dir}")

    def revive(self) -> list[str]:
        """Restart RQ processes that exited (what compose's restart policy does)."""
        revived = []
        for index, process in enumerate(self.workers):
            if process is None or process.poll() is not None:
                self.start_worker(index)
                revived.append(f"worker{index}")
        if self.cron is None or self.cron.poll() is not None:
            self.start_cron()
            revived.append("cron")
        return revived

    # --- helpers -----------------------------------------------------------------------

    def manage(self, *args: str, check: bool = True, timeout: float = 300):
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=5)

    def queue_busy(self) -> bool:
        """Jobs waiting (deferred passes too, scheduled for the end of their cluster's
        merge window), or one of our live workers busy with a job.

        Registrations of killed workers linger in Redis until their TTL: only workers
        whose pid is one of our live processes count.
        """
        from rq import Queue, Worker

        connection = self.redis()
        queue = Queue("default", connection=connection)
        if queue.count or queue.scheduled_job_registry.count:
            return True
        live = {p.pid for p in self.workers if p is not None and p.poll() is None}
        return any(
            w.pid in live and w.get_state() == "busy" for w in Worker.all(connection=connection)
        )

    def wait_drained(self, timeout: float = 120) -> float:
        """Wait until the queue is empty and no pass runs; return the seconds waited."""
        if self.config.embedded:
            return 0.0  # every pass ran before its request was answered
        began = time.monotonic()
        quiet = 0
        while time.monotonic() - began < timeout:
            try:
                busy = self.queue_busy()
            except redis.RedisError:
                busy = True
            quiet = 0 if busy else quiet + 1
            if quiet >= 3:  # three looks in a row, so a job between two looks is not missed
                return time.monotonic() - began
            time.sleep(0.05)
        raise RuntimeError("the queue did not drain")

    def last_job_ended(self, *, before: datetime) -> datetime | None:
        """When the workers last finished a job before `before` (rq's `ended_at`, kept
        with finished and failed jobs for their TTL): after `wait_drained`, the moment the
        queue actually went quiet, which the polling could only confirm later."""
        from rq.job import Job
        from rq.registry import FailedJobRegistry, FinishedJobRegistry

        connection = self.redis()
        ids = [
            *FinishedJobRegistry("default", connection=connection).get_job_ids(),
            *FailedJobRegistry("default", connection=connection).get_job_ids(),
        ]
        ended = [
            job.ended_at
            for job in Job.fetch_many(ids, connection=connection)
            if job is not None and job.ended_at is not None
        ]
        ended = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in ended]  # rq stores UTC
        return max((t for t in ended if t <= before), default=None)

    def audit(self) -> subprocess.CompletedProcess:
        return self.manage("audit", check=False)

    def metrics(self) -> str:
        headers = {"Authorization": f"Bearer {self.metrics_token}"}
        return requests.get(self.url + "/metrics", headers=headers, timeout=10).text

    def cpu_seconds(self) -> dict[str, dict[int, float]]:
        """CPU time used so far by each part of the stack, per process, from /proc:
        gunicorn's workers, the RQ workers (with what they forked and reaped), this
        database's PostgreSQL backends (those alive now, but the one asking), and this
        process (the clients). Per process, so that a backend that came or went between
        two readings (a connection past CONN_MAX_AGE) does not skew their difference."""
        backends = self.manage(
            "dbshell",
            "--",
            "-Atc",
            "select pid from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()",
            check=False,
        ).stdout.split()
        web = children_of(self.web.pid) if self.web else []
        return {
            "web": {pid: process_cpu(pid) for pid in web},
            "workers": {p.pid: process_cpu(p.pid) for p in self.workers if p is not None},
            "database": {int(pid): process_cpu(int(pid)) for pid in backends if pid.isdigit()},
            "clients": {os.getpid(): process_cpu(os.getpid(), children=False)},
        }

    def count_5xx_in_logs(self) -> int:
        """Server errors gunicorn or Django logged (tracebacks included)."""
        count = 0
        for log in self.dir.glob("web.log"):
            for line in log.read_text(errors="replace").splitlines():
                if '"status": 5' in line:
                    count += 1
        return count


def process_cpu(pid: int, *, children: bool = True) -> float:
    """utime + stime (and those of reaped children) of a process, in seconds; 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(x) for x in fields[11 : 15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The pids of the processes whose parent is `pid`, from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            children.append(int(entry.name))
    return children
