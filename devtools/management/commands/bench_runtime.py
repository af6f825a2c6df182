"""`manage.py bench_runtime`: create -> running and stop latency with Docker, next to a
manual cluster, and the time to reconcile a runtime running many labelled containers.

Run it against a dedicated database and a Docker engine that can run the image (the
test image is built locally FROM scratch with busybox: `--build-test-image`):

    createdb -h 127.0.0.1 -U postgres hv_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/hv_bench
    SECRET_KEY=bench DEBUG=false .venv/bin/python manage.py migrate
    SECRET_KEY=bench DEBUG=false .venv/bin/python manage.py bench_runtime \\
        --endpoint unix:///path/to/docker.sock --build-test-image

Embedded mode (no REDIS_URL): each service call returns once its outcome is committed,
so its duration is the latency. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import docker
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.bench.runtime import RuntimeBench
from runtime.tests.engines import TEST_IMAGE, build_test_image


class Command(BaseCommand):
    help = "Runtime latencies on a real Docker engine (see the module docstring)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--endpoint", required=True, help="Docker Engine API URL")
        parser.add_argument("--image", default=TEST_IMAGE)
        parser.add_argument("--build-test-image", action="store_true")
        parser.add_argument("--count", type=int, default=50, help="starts and stops")
        parser.add_argument("--workloads", type=int, default=200, help="for reconciliation")
        parser.add_argument("--rounds", type=int, default=20, help="reconciliations timed")

    def handle(self, *args, endpoint: str, image: str, **options) -> None:
        if settings.USE_RQ:
            raise CommandError("Run it embedded (without REDIS_URL): latencies are call times.")
        if options["build_test_image"]:
            build_test_image(docker.DockerClient(base_url=endpoint, version="auto"))
        settings.RUNTIME_STOP_GRACE_SECONDS = 10
        bench = RuntimeBench(endpoint=endpoint, image=image)
        try:
            for cluster in (bench.manual, bench.docker):
                for figures in bench.start_and_stop(cluster, options["count"]):
                    self.stdout.write(figures.line())
            self.stdout.write(bench.reconcile(options["workloads"], options["rounds"]).line())
        finally:
            bench.clean_up()
