"""Clusters: a fixed capacity in every resource dimension, and what the scheduler has allocated of it."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from hypervisor.resources import DIMENSIONS, NAMES, Dimension, Resources
from orgs.models import Organization
from planner import DEFAULT_POLICY, POLICIES
from runtime.models import Runtime

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
    # capacity_<dimension> and allocated_<dimension>: added below, from the registry.
    policy = models.CharField(
        max_length=8, choices=[(name, name) for name in POLICIES], default=DEFAULT_POLICY.value
    )
    starvation_after_seconds = models.PositiveIntegerField(null=True, blank=True)
    runtime = models.ForeignKey(
        Runtime,
        on_delete=models.PROTECT,  # a runtime in use is not removed under its clusters
        null=True,
        blank=True,
        related_name="clusters",
        help_text="Where its deployments run; empty: manual (nothing is started).",
    )
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
            *(c for name in NAMES for c in _dimension_constraints(name)),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def capacity(self) -> Resources:
        return Resources.of(self, "capacity_")

    @property
    def allocated(self) -> Resources:
        return Resources.of(self, "allocated_")

    @property
    def available(self) -> Resources:
        return self.capacity - self.allocated

    def set_capacity(self, capacity: Resources) -> None:
        for name, value in capacity.fields("capacity_").items():
            setattr(self, name, value)

    def set_allocated(self, allocated: Resources) -> None:
        for name, value in allocated.fields("allocated_").items():
            setattr(self, name, value)


# What the statemachine writes when the allocation changes (update_fields).
ALLOCATED_FIELDS = [f"allocated_{name}" for name in NAMES]


def resource_field(dimension: Dimension, **kwargs) -> models.Field:
    """The column for one dimension's exact integer (models of every app use it)."""
    field_class = models.BigIntegerField if dimension.big else models.IntegerField
    if dimension.stored_help:
        kwargs["help_text"] = dimension.stored_help
    return field_class(**kwargs)


for _dimension in DIMENSIONS:
    Cluster.add_to_class(f"capacity_{_dimension.name}", resource_field(_dimension))
    Cluster.add_to_class(f"allocated_{_dimension.name}", resource_field(_dimension, default=0))
