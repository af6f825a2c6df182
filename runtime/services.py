"""Writes for runtimes: register, change who may use one, remove, record reachability."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone

from hypervisor.exceptions import Conflict
from orgs.models import Organization
from runtime.backends import BACKENDS, OPTION_CHECKS
from runtime.models import Health, Kind, Runtime, cpu_refusal
from runtime.selectors import runtime_get
from runtime.signals import runtime_reachable_again

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}", re.ASCII)
_OPTION_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)


class RuntimeInUse(Conflict):
    """Clusters are still attached to the runtime."""


@dataclass(frozen=True)
class RuntimeCapacity:
    """CPU in millicores, RAM in MiB, GPUs: the most its clusters may sum to."""

    cpu: int
    ram_mb: int
    gpu: int


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    kind: str
    endpoint: str
    options: dict[str, str]
    credentials: dict[str, str]
    capacity: RuntimeCapacity | None = None


def _validate(spec: RuntimeSpec) -> None:
    errors: dict[str, list[str]] = {}
    if not _NAME.fullmatch(spec.name):
        errors["name"] = [
            "Lowercase letters, digits, '-' and '_', at most 64, first a letter or digit."
        ]
    if spec.kind not in Kind.values:
        errors["kind"] = [f"One of {', '.join(Kind.values)}."]
    elif spec.kind not in BACKENDS:
        errors["kind"] = [f"No {spec.kind} backend in this version (have: {', '.join(BACKENDS)})."]
    if not spec.endpoint.strip():
        errors["endpoint"] = ["Required."]
    options = spec.options if isinstance(spec.options, dict) else {"": None}
    bad = [key for key in options if not _OPTION_KEY.fullmatch(key)]
    if bad or not all(isinstance(value, str) for value in options.values()):
        errors["options"] = ["KEY=VALUE pairs; keys lowercase letters, digits and '_'."]
    elif spec.kind in OPTION_CHECKS and (problems := OPTION_CHECKS[spec.kind](options)):
        errors["options"] = problems
    if problems := _credential_problems(spec):
        errors["credentials"] = problems
    if spec.capacity and min(spec.capacity.cpu, spec.capacity.ram_mb, spec.capacity.gpu) < 0:
        errors["capacity"] = ["Every dimension is >= 0."]
    elif spec.capacity and spec.kind in Kind.values:
        cpu = spec.capacity.cpu
        refusal = cpu_refusal(spec.kind, spec.name, cpu, what="its capacity", at_least_one=False)
        if refusal:
            errors["capacity"] = [refusal]
    if errors:
        raise ValidationError(errors)


TLS_CREDENTIALS = ("ca_cert", "client_cert", "client_key")


def _credential_problems(spec: RuntimeSpec) -> list[str]:
    """Credentials are Docker's TLS files (PEM texts); a client certificate needs its key."""
    credentials = spec.credentials if isinstance(spec.credentials, dict) else {"": None}
    if not credentials:
        return []
    if spec.kind != Kind.DOCKER:
        return ["Only a docker runtime takes credentials (TLS client certificates)."]
    if set(credentials) - set(TLS_CREDENTIALS) or not all(
        isinstance(value, str) and value for value in credentials.values()
    ):
        return [f"PEM texts named {', '.join(TLS_CREDENTIALS)}."]
    if ("client_cert" in credentials) != ("client_key" in credentials):
        return ["A client certificate and its key go together."]
    return []


def runtime_add(*, spec: RuntimeSpec, organization_ids: Iterable[int] = ()) -> Runtime:
    """Register a runtime; with no organizations it is available to all of them."""
    _validate(spec)
    organization_ids = sorted(set(organization_ids))
    organizations = list(Organization.objects.filter(pk__in=organization_ids))
    if len(organizations) != len(organization_ids):
        known = {o.pk for o in organizations}
        missing = [str(pk) for pk in organization_ids if pk not in known]
        raise ValidationError({"organization": [f"No organization {', '.join(missing)}."]})
    capacity = spec.capacity
    try:
        with transaction.atomic():
            runtime = Runtime.objects.create(
                name=spec.name,
                kind=spec.kind,
                endpoint=spec.endpoint.strip(),
                options=spec.options,
                credentials=spec.credentials,
                capacity_cpu=capacity.cpu if capacity else None,
                capacity_ram_mb=capacity.ram_mb if capacity else None,
                capacity_gpu=capacity.gpu if capacity else None,
            )
            runtime.organizations.set(organizations)
    except IntegrityError:
        if Runtime.objects.filter(name=spec.name).exists():
            raise ValidationError({"name": [f"A runtime named {spec.name!r} exists."]}) from None
        raise
    return runtime


def runtime_set_organizations(*, runtime: Runtime, organization_ids: Iterable[int]) -> None:
    """Who may attach the runtime from now on (empty: everyone). Attached clusters stay."""
    runtime.organizations.set(Organization.objects.filter(pk__in=set(organization_ids)))


def runtime_remove(*, name: str) -> None:
    """Remove a runtime no cluster uses; `RuntimeInUse` (409) while one does."""
    runtime = runtime_get(name=name)
    try:
        runtime.delete()
    except ProtectedError as error:
        users = ", ".join(sorted(str(obj) for obj in error.protected_objects))
        raise RuntimeInUse(
            f"Runtime {name!r} is attached to: {users}. Detach it from them first."
        ) from error


def runtime_record_status(*, runtime_id: int, status: Health, detail: str) -> None:
    """Record what the last call found; `status_since` moves only when the status does."""
    now = timezone.now()
    changed = Runtime.objects.filter(pk=runtime_id).filter(~Q(status=status))
    updated = changed.update(status=status, status_since=now, status_detail=detail[:2000])
    if updated and status == Health.OK:
        runtime_reachable_again.send(sender=Runtime, runtime_id=runtime_id)
