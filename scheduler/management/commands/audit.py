"""`manage.py audit [--cluster ID ...]`: check API.md's guarantees against the database."""

from django.core.management.base import BaseCommand, CommandParser

from scheduler.audit import audit
from scheduler.runtimeaudit import audit_runtimes


class Command(BaseCommand):
    help = (
        "Check every scheduler guarantee of API.md against the database and print each "
        "violation, then compare what each runtime really runs with the database. Exit code 1 "
        "if there is any violation. Read-only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--cluster", type=int, action="append", help="Only this cluster (repeatable)."
        )

    def handle(self, *args, cluster: list[int] | None, **options) -> None:
        # The runtimes after the database's snapshot, outside its read-only transaction.
        violations = audit(cluster_ids=cluster) + audit_runtimes(cluster_ids=cluster)
        for violation in violations:
            self.stdout.write(str(violation))
        if violations:
            self.stderr.write(f"audit: {len(violations)} violation(s)")
            raise SystemExit(1)
        self.stdout.write("audit: clean (every guarantee holds)")
