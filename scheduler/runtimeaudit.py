"""The runtime half of `audit`: what the engines really run, against the database.

Violations:
- `runtime`: a workload of this installation runs for a deployment that does not hold
  room on a cluster of that runtime, or two workloads run for one deployment;
- `runtime capacity`: what really runs for a cluster sums above its capacity;
- `runtime unreachable`: the comparison could not be made.
Read-only towards the engines (it lists workloads); run it outside the audit's read-only
transaction, since a gateway call records the runtime's status.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from clusters.models import Cluster
from deployments.models import HOLDS_ROOM, Deployment
from deployments.workloads import DEPLOYMENT_LABEL
from hypervisor.resources import Resources
from runtime.backends.base import ALIVE, RuntimeUnavailable
from runtime.gateway import gateway_for
from runtime.labels import installation_labels
from runtime.models import Runtime
from scheduler.audit import Violation


def audit_runtimes(*, cluster_ids: list[int] | None = None) -> list[Violation]:
    clusters = Cluster.objects.filter(runtime__isnull=False).order_by("pk")
    if cluster_ids is not None:
        clusters = clusters.filter(pk__in=cluster_ids)
    by_runtime: dict[int, list[Cluster]] = defaultdict(list)
    for cluster in clusters:
        by_runtime[cluster.runtime_id].append(cluster)
    violations: list[Violation] = []
    for runtime in Runtime.objects.filter(pk__in=by_runtime).order_by("pk"):
        violations += _audit_runtime(runtime, by_runtime[runtime.pk])
    return violations


def _audit_runtime(runtime: Runtime, clusters: list[Cluster]) -> list[Violation]:
    try:
        workloads = gateway_for(runtime).list_workloads(labels=installation_labels())
    except RuntimeUnavailable as error:
        return [
            Violation("runtime unreachable", c.pk, f"{runtime.name}: {error}") for c in clusters
        ]
    running = [w for w in workloads if w.state.phase in ALIVE]
    ids = [int(w.labels.get(DEPLOYMENT_LABEL, "0") or 0) for w in running]
    holding = {
        d.pk: d
        for d in Deployment.objects.filter(
            pk__in=ids, status__in=HOLDS_ROOM, cluster__runtime=runtime
        )
    }
    violations = []
    for deployment_id, count in Counter(ids).items():
        deployment = holding.get(deployment_id)
        cluster_id = deployment.cluster_id if deployment else clusters[0].pk
        if deployment is None:
            violations.append(
                Violation(
                    "runtime",
                    cluster_id,
                    f"a workload runs on {runtime.name} without holding room",
                    deployment_id,
                )
            )
        elif count > 1:
            violations.append(
                Violation("runtime", cluster_id, f"{count} workloads run for it", deployment_id)
            )
    violations += _capacity(clusters, holding.values())
    return violations


def _capacity(clusters: list[Cluster], running: Iterable[Deployment]) -> list[Violation]:
    used: dict[int, Resources] = defaultdict(Resources)
    for deployment in running:
        used[deployment.cluster_id] = used[deployment.cluster_id] + deployment.resources
    return [
        Violation(
            "runtime capacity",
            cluster.pk,
            f"what really runs ({used[cluster.pk]}) exceeds the capacity ({cluster.capacity})",
        )
        for cluster in clusters
        if not used[cluster.pk].fits_in(cluster.capacity)
    ]
