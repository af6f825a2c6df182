"""The catalog of runtimes: the engines where deployments actually run.

A runtime is an operator's registration of one engine endpoint (a Docker Engine API, a
libvirt connection URI, a Slurm cluster). Owners and admins attach one of those available
to their organization to a cluster; a cluster with none is `manual`. The engines
themselves are reached through `runtime.backends` (pure engine I/O) and
`runtime.gateway` (retries, the circuit breaker, `status`).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from orgs.models import Organization


class Kind(models.TextChoices):
    DOCKER = "docker"
    LIBVIRT = "libvirt"
    SLURM = "slurm"


class Health(models.TextChoices):
    OK = "ok"
    UNREACHABLE = "unreachable"


class RuntimeQuerySet(models.QuerySet["Runtime"]):
    def available_to(self, organization_id: int) -> RuntimeQuerySet:
        """Runtimes an organization may attach: those open to all, and those named for it."""
        return self.filter(
            Q(organizations__isnull=True) | Q(organizations__id=organization_id)
        ).distinct()


class Runtime(models.Model):
    """One engine endpoint, with its backend settings and optional capacity.

    `endpoint` and `credentials` are for staff only: the API shows a runtime as
    `{name, kind, status, status_since}`. `capacity_*` (all or none) bounds the sum of the
    capacities of the clusters attached to it. `status` is what the last calls through
    the gateway found; `status_since` when it last changed.
    """

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    endpoint = models.CharField(
        max_length=512,
        help_text="docker: unix:///var/run/docker.sock or tcp://host:2376; "
        "libvirt: a connection URI such as qemu:///system; slurm: the path of slurm.conf.",
    )
    credentials = models.JSONField(
        default=dict,
        blank=True,
        help_text="docker over tcp: PEM texts under ca_cert, client_cert, client_key.",
    )
    options = models.JSONField(
        default=dict, blank=True, help_text="Backend settings, e.g. {'network': 'none'}."
    )
    capacity_cpu = models.BigIntegerField(null=True, blank=True, help_text="Millicores.")
    capacity_ram_mb = models.BigIntegerField(null=True, blank=True)
    capacity_gpu = models.IntegerField(null=True, blank=True)
    organizations = models.ManyToManyField(
        Organization,
        blank=True,
        related_name="runtimes",
        help_text="Empty: available to every organization.",
    )
    status = models.CharField(max_length=16, choices=Health.choices, default=Health.OK)
    status_since = models.DateTimeField(auto_now_add=True)
    status_detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RuntimeQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="runtime_kind_valid"),
            models.CheckConstraint(
                condition=Q(status__in=Health.values), name="runtime_status_valid"
            ),
            # A capacity is a whole vector or nothing.
            models.CheckConstraint(
                condition=Q(capacity_cpu__isnull=True, capacity_ram_mb__isnull=True)
                & Q(capacity_gpu__isnull=True)
                | Q(capacity_cpu__gte=0, capacity_ram_mb__gte=0, capacity_gpu__gte=0),
                name="runtime_capacity_whole",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def has_capacity(self) -> bool:
        return self.capacity_cpu is not None

    @property
    def whole_cpus(self) -> bool:
        return self.kind in WHOLE_CPU_KINDS

    def cpu_refusal(self, millicores: int, *, what: str, at_least_one: bool) -> str | None:
        return cpu_refusal(self.kind, self.name, millicores, what=what, at_least_one=at_least_one)


# Engines that allocate whole CPUs (Slurm: at least one per job): a request of 0.5 CPU, or
# of none, would hold a whole CPU on a node, more than this service counts.
WHOLE_CPU_KINDS = frozenset({Kind.SLURM})


def cpu_refusal(
    kind: str, name: str, millicores: int, *, what: str, at_least_one: bool
) -> str | None:
    """Why `millicores` (a request, which needs `at_least_one` CPU, or a capacity, named
    by `what`) is refused on the runtime `name` of `kind`; None when it is not."""
    if kind not in WHOLE_CPU_KINDS:
        return None
    if millicores % 1000 == 0 and (millicores or not at_least_one):
        return None
    least = ", at least one" if at_least_one else ""
    return (
        f"cpu {millicores / 1000:g}: runtime {name!r} is {kind}, which allocates whole CPUs, "
        f"so {what} must be a whole number of CPUs{least} (anything else would hold more "
        "on a node than this service counts)."
    )


class Installation(models.Model):
    """This installation's id: the `io.hypervisor.installation` label of its workloads.

    One row, made on first use with a random id, unless `HYPERVISOR_INSTALLATION_ID` is
    set. Two installations sharing an engine tell their workloads apart by it.
    """

    installation_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.installation_id
