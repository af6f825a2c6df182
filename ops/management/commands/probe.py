"""`manage.py probe --worker | --cron`: container health checks for the RQ processes.

Healthy when a process of that kind on this host has a fresh heartbeat in Redis: a
worker (`rqworker`) or a cron scheduler (`rqcron`). Exit code 0 or 1, one line of output.
"""

import socket
from datetime import UTC, datetime, timedelta

import django_rq
from django.core.management.base import BaseCommand, CommandParser
from rq import Worker
from rq.cron import CronScheduler

# rq heartbeats every few seconds while idle (and the worker's TTL is 420 s by default);
# older than this means the process is stuck or gone.
FRESH = timedelta(seconds=120)


class Command(BaseCommand):
    help = "Exit 0 if an RQ worker (--worker) or cron scheduler (--cron) on this host is alive."

    def add_arguments(self, parser: CommandParser) -> None:
        kind = parser.add_mutually_exclusive_group(required=True)
        kind.add_argument("--worker", action="store_true")
        kind.add_argument("--cron", action="store_true")

    def handle(self, *args, worker: bool, cron: bool, **options) -> None:
        connection = django_rq.get_connection("default")
        host = socket.gethostname()
        if worker:
            beats = [
                w.last_heartbeat for w in Worker.all(connection=connection) if w.hostname == host
            ]
        else:
            beats = [s.last_heartbeat for s in CronScheduler.all(connection) if s.hostname == host]
        now = datetime.now(UTC)
        fresh = [b for b in beats if b is not None and now - _aware(b) < FRESH]
        kind = "worker" if worker else "cron scheduler"
        if not fresh:
            self.stderr.write(f"no live RQ {kind} on {host}")
            raise SystemExit(1)
        self.stdout.write(f"{len(fresh)} live RQ {kind}(s) on {host}")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
