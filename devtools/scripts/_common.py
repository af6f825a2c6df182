"""Shared by the run scripts: make the repository importable, parse the stack options."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def stack_arguments(parser: argparse.ArgumentParser, *, database: str) -> None:
    parser.add_argument("--database", default=database, help="PostgreSQL database (recreated)")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/5", help="'': a private redis-server"
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--rq-workers", type=int, default=2)
    parser.add_argument(
        "--worker-class",
        default="scheduler.worker.SchedulerWorker",
        help="RQ worker class; '' for rq's default",
    )
    parser.add_argument("--keep", action="store_true", help="leave the logs directory behind")


def stack_config(args: argparse.Namespace, **overrides):
    from devtools.bench.stack import StackConfig

    return StackConfig(
        database=args.database,
        pg_url=args.pg_url,
        redis_url=args.redis_url or None,  # "": a private redis-server
        web_workers=args.web_workers,
        rq_workers=args.rq_workers,
        worker_class=args.worker_class,
        **overrides,
    )


def python_of_the_venv() -> None:
    """Re-run under the project's virtualenv if started with another interpreter."""
    venv = ROOT / ".venv" / "bin" / "python"
    if venv.exists() and Path(sys.prefix) != venv.parent.parent:
        os.execv(str(venv), [str(venv), *sys.argv])
