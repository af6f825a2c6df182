"""``fifo``: within a priority, queue order (``queued_at``, then id); what fits starts
(backfill), and a deployment that does not fit may preempt lower-priority work."""

from __future__ import annotations

from planner.engine import Engine
from planner.model import ClusterSnapshot, Plan


def plan(snapshot: ClusterSnapshot) -> Plan:
    """The engine's walk in queue order, to a fixpoint."""
    engine = Engine(snapshot)
    engine.settle()
    return engine.result()
