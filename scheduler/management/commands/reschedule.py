"""`manage.py reschedule [--cluster ID ... | --all]`: run scheduling passes now."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clusters.models import Cluster
from deployments.services import dependencies_resolve_all
from scheduler.services import schedule_cluster


class Command(BaseCommand):
    help = "Run a scheduling pass over some or all clusters and print what changed."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--cluster", type=int, action="append", help="A cluster id (repeatable)."
        )
        target.add_argument("--all", action="store_true", help="Every cluster.")

    def handle(self, *args, cluster: list[int] | None, all: bool, **options) -> None:
        ids = sorted(Cluster.objects.values_list("pk", flat=True)) if all else sorted(set(cluster))
        missing = set(ids) - set(Cluster.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if missing:
            raise CommandError(f"No cluster with id {', '.join(map(str, sorted(missing)))}.")
        # Settle dependencies first, so that newly queued deployments are in the passes.
        dependencies_resolve_all()
        for cluster_id in ids:
            result = schedule_cluster(cluster_id=cluster_id)
            started = ", ".join(map(str, result.started)) or "none"
            preempted = ", ".join(f"{v} (for {p})" for v, p in result.preempted) or "none"
            self.stdout.write(
                f"cluster {cluster_id}: started {started}; preempted {preempted}; "
                f"{result.waiting} waiting"
            )
