"""How the deployments layer hands a cascade too large for one transaction to the layer
above: it sends `cascade_left`; `scheduler` connects `scheduler.signals.on_cascade_left`
to it in `SchedulerConfig.ready()`, which runs `deployments.services.dependencies_sweep`
after the commit (an RQ job with Redis, in-process otherwise).
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: organization_id (int), after_pk (int: the finished deployment; its dependents
# have larger pks).
cascade_left = Signal()


def leave_cascade(*, organization_id: int, after_pk: int) -> None:
    """Have the organization's pending deployments above `after_pk` swept once the
    current transaction commits."""
    cascade_left.send(sender=None, organization_id=organization_id, after_pk=after_pk)
