"""Clusters: fixed CPU/RAM/GPU capacity, and what the scheduler has allocated of it."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from hypervisor.resources import Resources
from orgs.models import Organization
from planner import DEFAULT_POLICY, POLICIES

# Documented maxima (API.md: values beyond them are 400, not 500).
MAX_CPU_MILLICORES = 100_000_000  # 100,000 cores
MAX_RAM_MB = 1_000_000_000  # about 954 TiB
MAX_GPU = 100_000
MAX_STARVATION_SECONDS = 365 * 24 * 3600


class ClusterQuerySet(models.QuerySet["Cluster"]):
    def visible_to(self, user) -> ClusterQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(organization__memberships__user=user)


def _dimension_constraints(dim: str) -> list[models.BaseConstraint]:
    capacity, allocated = f"capacity_{dim}", f"allocated_{dim}"
    return [
        models.CheckConstraint(
            condition=Q(**{f"{capacity}__gte": 0}), name=f"cluster_{dim}_cap_ge_0"
        ),
        models.CheckConstraint(
            condition=Q(**{f"{allocated}__gte": 0}), name=f"cluster_{dim}_alloc_ge_0"
        ),
        # The capacity invariant, held by the database itself: no state may over-allocate.
        models.CheckConstraint(
            condition=Q(**{f"{allocated}__lte": F(capacity)}), name=f"cluster_{dim}_alloc_le_cap"
        ),
    ]


class Cluster(models.Model):
    """A pool of compute owned by an organization.

    `allocated_*` is the sum of the requests of the cluster's running deployments. Only
    the scheduler (under the cluster's row lock) and deployment status changes (under the
    same lock) write it; `manage.py audit` checks it against the running set.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="clusters"
    )
    name = models.CharField(max_length=100)
    capacity_cpu = models.BigIntegerField(help_text="Millicores.")
    capacity_ram_mb = models.BigIntegerField()
    capacity_gpu = models.IntegerField()
    allocated_cpu = models.BigIntegerField(default=0, help_text="Millicores.")
    allocated_ram_mb = models.BigIntegerField(default=0)
    allocated_gpu = models.IntegerField(default=0)
    policy = models.CharField(
        max_length=8, choices=[(name, name) for name in POLICIES], default=DEFAULT_POLICY.value
    )
    starvation_after_seconds = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ClusterQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="cluster_name_unique_in_org"
            ),
            models.CheckConstraint(
                # From the planner's registry: a new policy is one module and one line there.
                condition=Q(policy__in=list(POLICIES)),
                name="cluster_policy_valid",
            ),
            *_dimension_constraints("cpu"),
            *_dimension_constraints("ram_mb"),
            *_dimension_constraints("gpu"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def capacity(self) -> Resources:
        return Resources(self.capacity_cpu, self.capacity_ram_mb, self.capacity_gpu)

    @property
    def allocated(self) -> Resources:
        return Resources(self.allocated_cpu, self.allocated_ram_mb, self.allocated_gpu)

    @property
    def available(self) -> Resources:
        return self.capacity - self.allocated

    def set_capacity(self, capacity: Resources) -> None:
        self.capacity_cpu, self.capacity_ram_mb, self.capacity_gpu = (
            capacity.cpu,
            capacity.ram_mb,
            capacity.gpu,
        )

    def set_allocated(self, allocated: Resources) -> None:
        self.allocated_cpu, self.allocated_ram_mb, self.allocated_gpu = (
            allocated.cpu,
            allocated.ram_mb,
            allocated.gpu,
        )
