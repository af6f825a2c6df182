"""Cluster row locks, and THE LOCK ORDER that every transaction follows.

THE LOCK ORDER (every transaction that takes more than one lock follows it):
  0. a runtime row (`runtime.locking`), only to attach a cluster to it or to change an
     attached cluster's capacity: the sum of its clusters' capacities is checked under it;
  1. cluster rows, by ascending pk (here);
  2. then deployment rows, by ascending pk (`deployments.locking`).
A transaction never takes a cluster lock after a deployment lock. Dependencies always
have a smaller pk than their dependents, so a cascade that locks dependents after their
dependency also locks in ascending pk order.

Locks are `FOR NO KEY UPDATE`: they serialize writers to the same row, but do not block
inserts that merely reference the row by foreign key (a new deployment on a locked
cluster, a dependency on a locked deployment), which take `FOR KEY SHARE`.

On SQLite (the embedded default) row locks do not exist; every transaction there is
`BEGIN IMMEDIATE`, which serializes writers for the whole database.
"""

from __future__ import annotations

from clusters.models import Cluster


def lock_cluster(cluster_id: int) -> Cluster | None:
    """Lock one cluster row (step 1 of the lock order); None if it no longer exists."""
    return Cluster.objects.select_for_update(no_key=True).filter(pk=cluster_id).first()
