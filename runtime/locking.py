"""The runtime row's lock (see the lock order in `clusters.locking`).

A runtime row is locked before any cluster row, and only by what attaches a cluster to
it or changes an attached cluster's capacity: the sum of its clusters' capacities is
checked under it, so two such changes cannot both pass the check.
"""

from __future__ import annotations

from runtime.models import Runtime


def lock_runtime(runtime_id: int) -> Runtime | None:
    """`FOR NO KEY UPDATE` on the runtime row; the caller is inside `atomic()`."""
    return Runtime.objects.select_for_update(no_key=True).filter(pk=runtime_id).first()
