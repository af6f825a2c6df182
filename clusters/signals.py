"""How the clusters and deployments layers ask for a scheduling pass without importing
the scheduler above them: they send `pass_wanted`; `scheduler` connects
`scheduler.triggers.request_schedule` to it in `SchedulerConfig.ready()`.

Sent inside the transaction that made the change; the receiver defers the pass to the
commit (the pass then sees the change and never runs inside someone else's transaction).
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: cluster_id (int), cause (str: what made room, named in start events; may be ""),
# arrival (int or None: a deployment just queued), shortcut (bool: the change touched only
# deployments, so the scheduler may decide it without a pass where the outcome is certain).
pass_wanted = Signal()


def want_pass(
    *, cluster_id: int, cause: str = "", arrival: int | None = None, shortcut: bool = False
) -> None:
    """Ask for a pass over `cluster_id` once the current transaction commits."""
    pass_wanted.send(
        sender=None, cluster_id=cluster_id, cause=cause, arrival=arrival, shortcut=shortcut
    )
