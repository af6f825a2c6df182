"""The scheduling policies, one module each, registered here by name.

A policy is a module with ``plan(snapshot: ClusterSnapshot) -> Plan``. Adding one is
that module and one line in ``POLICIES``: the ``Policy`` names, the cluster's `policy`
choices, its CHECK constraint and the API's choices all derive from this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from planner.model import ClusterSnapshot, Plan
from planner.policies import fifo, pack

POLICIES: dict[str, Callable[[ClusterSnapshot], Plan]] = {
    "fifo": fifo.plan,
    "pack": pack.plan,
}

# The registry's names as an enum (`Policy.FIFO == "fifo"`), for typed call sites.
Policy = StrEnum("Policy", {name.upper(): name for name in POLICIES})
DEFAULT_POLICY = Policy("pack")
