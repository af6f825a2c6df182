"""This installation's label: what marks a workload as ours on a shared engine.

The service never touches a workload without `INSTALLATION_LABEL` set to its own id
(API.md, "Runtimes"). The id is `HYPERVISOR_INSTALLATION_ID` when set, else a random one
made once and kept in the database (`Installation`).
"""

from __future__ import annotations

import secrets

from django.conf import settings

from runtime.models import Installation

INSTALLATION_LABEL = "io.hypervisor.installation"

_cached: str | None = None


def installation_id() -> str:
    """This installation's id (read once per process: it never changes)."""
    global _cached
    if settings.HYPERVISOR_INSTALLATION_ID:
        return settings.HYPERVISOR_INSTALLATION_ID
    if _cached is None:
        row = Installation.objects.order_by("pk").first()
        if row is None:
            # Two processes may race here: the unique first row wins, both read it back.
            Installation.objects.get_or_create(pk=1, defaults={"installation_id": _new_id()})
            row = Installation.objects.order_by("pk").first()
        _cached = row.installation_id
    return _cached


def _new_id() -> str:
    return secrets.token_hex(6)


def installation_labels() -> dict[str, str]:
    """The label selector of this installation's workloads."""
    return {INSTALLATION_LABEL: installation_id()}
