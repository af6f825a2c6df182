"""A real `rqworker` process for the tests that exercise the queue, on the suite's own
PostgreSQL database and Redis (passed through the environment, as production does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def worker_env(**extra: str) -> dict[str, str]:
    """This process's environment, pointed at the test database and Redis, plus `extra`."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        **extra,
    }


def worker_command(*options: str) -> list[str]:
    """The production worker (`SchedulerWorker`, which forks no work horse) over the
    default queue, with `options` (`--with-scheduler`, `--burst`)."""
    return [
        sys.executable,
        "manage.py",
        "rqworker",
        "--worker-class",
        "scheduler.worker.SchedulerWorker",
        *options,
        "default",
    ]


def run_burst_worker(*options: str, **extra: str) -> subprocess.CompletedProcess:
    """Run `rqworker --burst` (with `options`) over the default queue until it is empty."""
    return subprocess.run(
        [sys.executable, "manage.py", "rqworker", *options, "--burst", "default"],
        cwd=ROOT,
        env=worker_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
