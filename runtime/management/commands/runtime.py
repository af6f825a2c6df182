"""`manage.py runtime add|list|remove|check`: the operators' catalog of runtimes.

runtime add NAME --kind docker|libvirt|slurm --endpoint URL
    [--capacity-cpu N --capacity-ram-mb N --capacity-gpu N] [--organization ID ...]
    [--option KEY=VALUE ...] [--tls-ca FILE --tls-cert FILE --tls-key FILE]
runtime list
runtime remove NAME
runtime check NAME      asks the engine now and records `ok` or `unreachable`
"""

from __future__ import annotations

from argparse import ArgumentParser
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from hypervisor.admin import error_text
from hypervisor.exceptions import Conflict
from runtime import services
from runtime.backends.base import RuntimeUnavailable
from runtime.gateway import gateway_for
from runtime.models import Kind, Runtime
from runtime.selectors import runtime_capacity_text, runtime_get


def _cores(text: str) -> int:
    try:
        cores = Decimal(text)
    except InvalidOperation:
        raise CommandError(f"--capacity-cpu: {text!r} is not a number of cores.") from None
    if cores < 0 or cores != cores.quantize(Decimal("0.001")):
        raise CommandError("--capacity-cpu: cores >= 0, at most 3 decimals.")
    return int(cores * 1000)


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise CommandError(f"--option {text!r}: expected KEY=VALUE.")
    return key.strip(), value.strip()


class Command(BaseCommand):
    help = "Register, list, check and remove runtimes (where deployments actually run)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True)
        add = verbs.add_parser("add", help="Register a runtime.")
        add.add_argument("name")
        add.add_argument("--kind", required=True, choices=Kind.values)
        add.add_argument("--endpoint", required=True)
        add.add_argument("--capacity-cpu", help="Cores (up to 3 decimals).")
        add.add_argument("--capacity-ram-mb", type=int)
        add.add_argument("--capacity-gpu", type=int)
        add.add_argument("--organization", type=int, action="append", default=[])
        add.add_argument("--option", action="append", default=[], help="KEY=VALUE")
        add.add_argument("--tls-ca", type=Path, help="docker over tcp: CA certificate (PEM)")
        add.add_argument("--tls-cert", type=Path, help="docker over tcp: client certificate")
        add.add_argument("--tls-key", type=Path, help="docker over tcp: client key")
        verbs.add_parser("list", help="List runtimes with their status.")
        remove = verbs.add_parser("remove", help="Remove a runtime no cluster uses.")
        remove.add_argument("name")
        check = verbs.add_parser("check", help="Ask the engine now; record its status.")
        check.add_argument("name")

    def handle(self, *args, verb: str, **options) -> None:
        try:
            getattr(self, f"_{verb}")(**options)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                fields = error.message_dict.items()
                raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in fields)) from error
            raise CommandError(error_text(error)) from error
        except Conflict as error:
            raise CommandError(error_text(error)) from error
        except Runtime.DoesNotExist as error:
            raise CommandError(str(error)) from error

    def _add(self, *, name: str, kind: str, endpoint: str, **options) -> None:
        dimensions = (options["capacity_cpu"], options["capacity_ram_mb"], options["capacity_gpu"])
        capacity = None
        if any(value is not None for value in dimensions):
            if any(value is None for value in dimensions):
                raise CommandError(
                    "A capacity is all three of --capacity-cpu, --capacity-ram-mb and "
                    "--capacity-gpu, or none."
                )
            capacity = services.RuntimeCapacity(
                _cores(options["capacity_cpu"]), dimensions[1], dimensions[2]
            )
        credentials = {
            key: path.read_text()
            for key, path in (
                ("ca_cert", options["tls_ca"]),
                ("client_cert", options["tls_cert"]),
                ("client_key", options["tls_key"]),
            )
            if path is not None
        }
        spec = services.RuntimeSpec(
            name=name,
            kind=kind,
            endpoint=endpoint,
            options=dict(_option(text) for text in options["option"]),
            credentials=credentials,
            capacity=capacity,
        )
        runtime = services.runtime_add(spec=spec, organization_ids=options["organization"])
        self.stdout.write(f"Added runtime {runtime.name} ({runtime.kind}, {runtime.endpoint}).")

    def _list(self, **_options) -> None:
        runtimes = Runtime.objects.prefetch_related("organizations")
        if not runtimes:
            self.stdout.write("No runtimes: every cluster is manual.")
        for runtime in runtimes:
            organizations = ", ".join(str(o.pk) for o in runtime.organizations.all()) or "all"
            self.stdout.write(
                f"{runtime.name}\t{runtime.kind}\t{runtime.endpoint}\t"
                f"{runtime.status} since {runtime.status_since:%Y-%m-%d %H:%M:%S%z}\t"
                f"capacity: {runtime_capacity_text(runtime)}\torganizations: {organizations}"
            )

    def _remove(self, *, name: str, **_options) -> None:
        services.runtime_remove(name=name)
        self.stdout.write(f"Removed runtime {name}.")

    def _check(self, *, name: str, **_options) -> None:
        runtime = runtime_get(name=name)
        try:
            gateway_for(runtime).ping()
        except RuntimeUnavailable as error:
            raise CommandError(f"{name}: unreachable: {error}") from error
        self.stdout.write(f"{name}: ok")
