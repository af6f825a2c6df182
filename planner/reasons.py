"""Sentences for the queue endpoint: why a deployment is still waiting, with numbers.

Pure formatting on plain ``(cpu millicores, ram MiB, gpu)`` triples, so that this module
imports nothing from the planner (which imports it). Every sentence names the numbers a
person needs to act: lower the request, raise the priority, or wait for named work.
"""

from __future__ import annotations

from hypervisor.resources import DIMENSIONS

Vec = tuple[int, int, int]

_DIMENSIONS = range(len(DIMENSIONS))


def format_amount(dimension: int, amount: int) -> str:
    """``0.5 CPU``, ``2 CPU``, ``4096 MiB``, ``1 GPU``: the registry's exact form."""
    return DIMENSIONS[dimension].exact(amount)


def exceeds_capacity(request: Vec, capacity: Vec) -> str:
    parts = [
        f"needs {format_amount(d, request[d])}, capacity {format_amount(d, capacity[d])}"
        for d in _DIMENSIONS
        if request[d] > capacity[d]
    ]
    return f"request exceeds the cluster's capacity ({'; '.join(parts)})"


def held_back(owner_id: int, starvation_after_seconds: int) -> str:
    return (
        f"held back: the room it needs is reserved for deployment {owner_id} "
        f"(waiting longer than {starvation_after_seconds} s)"
    )


def reserved(starvation_after_seconds: int, detail: str) -> str:
    return (
        f"reserved: waiting longer than {starvation_after_seconds} s; no equal- or "
        f"lower-priority deployment may start in the room it needs; {detail}"
    )


def shortage(*, request: Vec, usable: Vec, held: Vec, lower: Vec, capacity: Vec) -> str:
    """Why ``request`` neither fits in ``usable`` nor in ``usable`` plus the room that
    preempting lower-priority work (``lower``) would free, one clause per lacking dimension.

    ``held`` is the part of the free room reserved for longer-waiting deployments; what
    is neither free, held nor lower-priority preemptible belongs to work this deployment
    may not stop (non-preemptible, or of equal or higher priority).
    """
    parts = [
        _dimension_shortage(d, request, usable, held, lower, capacity)
        for d in _DIMENSIONS
        if request[d] > usable[d] + lower[d]
    ]
    if not parts:  # only reached if called on a startable deployment; say so plainly
        return "can start at the next scheduling pass"
    return "; ".join(parts)


def _dimension_shortage(d: int, request: Vec, usable: Vec, held: Vec, lower: Vec, cap: Vec) -> str:
    text = f"needs {format_amount(d, request[d])}, {format_amount(d, usable[d])} free"
    if held[d]:
        text += f" ({format_amount(d, held[d])} more reserved for longer-waiting work)"
    if lower[d]:
        short = request[d] - usable[d] - lower[d]
        return (
            f"{text}; {format_amount(d, lower[d])} more could be freed by preempting "
            f"lower-priority work, still {format_amount(d, short)} short"
        )
    blocked = cap[d] - usable[d] - held[d]
    return (
        f"{text}; non-preemptible or equal- or higher-priority work holds "
        f"{format_amount(d, blocked)} of {format_amount(d, cap[d])}"
    )
