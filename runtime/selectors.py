"""Reads of the runtime catalog."""

from __future__ import annotations

from runtime.models import Runtime


def runtime_available(*, name: str, organization_id: int) -> Runtime | None:
    """The runtime of that name if the organization may attach it, else None."""
    return Runtime.objects.available_to(organization_id).filter(name=name).first()


def runtime_get(*, name: str) -> Runtime:
    """The runtime of that name; `Runtime.DoesNotExist` naming it otherwise."""
    runtime = Runtime.objects.filter(name=name).first()
    if runtime is None:
        raise Runtime.DoesNotExist(f"No runtime named {name!r}.")
    return runtime


def runtime_capacity_text(runtime: Runtime) -> str:
    if not runtime.has_capacity:
        return "unbounded"
    return f"{runtime.capacity_cpu / 1000:g} CPU, {runtime.capacity_ram_mb} MiB, {runtime.capacity_gpu} GPU"
