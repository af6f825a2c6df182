"""Receivers of the lower layers' signals, connected in `SchedulerConfig.ready()`."""

from __future__ import annotations

from scheduler.triggers import request_schedule


def on_pass_wanted(sender, *, cluster_id: int, cause: str = "", **kwargs) -> None:
    """`clusters.signals.pass_wanted`: a change below asks for a pass on commit."""
    request_schedule(cluster_id=cluster_id, cause=cause)
