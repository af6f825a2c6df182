"""Deployments, their dependencies and their status history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from clusters.models import Cluster, resource_field
from hypervisor.resources import DIMENSIONS, NAMES, Resources

MAX_PRIORITY = 1_000_000


class Status(models.TextChoices):
    PENDING = "pending"  # waiting for dependencies
    QUEUED = "queued"  # dependencies met, waiting for resources
    STARTING = "starting"  # placed: room held while its runtime starts it
    RUNNING = "running"
    STOPPING = "stopping"  # room held until its runtime confirms the stop
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


WAITING = frozenset({Status.PENDING, Status.QUEUED})
# What counts in a cluster's `allocated` (API.md: these "hold room").
HOLDS_ROOM = frozenset({Status.STARTING, Status.RUNNING, Status.STOPPING})
FINISHED = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class Condition(models.TextChoices):
    SUCCEEDED = "succeeded"  # the dependency must complete
    FINISHED = "finished"  # complete, fail or be cancelled
    FAILED = "failed"  # fail or be cancelled


class DeploymentQuerySet(models.QuerySet["Deployment"]):
    def visible_to(self, user) -> DeploymentQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(cluster__organization__memberships__user=user)


class Deployment(models.Model):
    """A request to run an image with a resource request on a cluster."""

    # No index of its own: deployment_cluster_status (cluster, status) serves cluster_id.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="deployments", db_index=False
    )
    name = models.CharField(max_length=100)
    image = models.CharField(max_length=512)
    # One field per resource dimension (its request): added below, from the registry.
    priority = models.IntegerField(default=0)
    preemptible = models.BooleanField(default=True)
    command = models.JSONField(
        null=True, blank=True, help_text="Replaces the image's command; null: the image's own."
    )
    env = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    status_reason = models.TextField(blank=True, default="")
    stopping_to = models.CharField(
        max_length=16,
        choices=Status.choices,
        blank=True,
        default="",
        help_text="The status a stopping deployment takes once its runtime confirms the stop.",
    )
    preemption_count = models.PositiveIntegerField(default=0)
    exit_code = models.IntegerField(
        null=True, blank=True, help_text="The workload's exit code, once it exited."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deployments",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["cluster", "status"], name="deployment_cluster_status"),
            models.Index(fields=["status"], name="deployment_status"),
            # A cluster's queue in the scheduler's order of consideration, and its
            # pending tail: pages, counts and positions read ranges of these
            # (scheduler/selectors.py), never the whole queue.
            models.Index(
                "cluster",
                models.F("priority").desc(),
                "queued_at",
                "id",
                condition=Q(status="queued"),
                name="deployment_queue_order",
            ),
            models.Index(
                "cluster",
                models.F("priority").desc(),
                "id",
                condition=Q(status="pending"),
                name="deployment_pending_order",
            ),
            # Which queued deployments could use some room: a range of requests, not the
            # queue (scheduler/incremental.py).
            models.Index(
                fields=["cluster", "cpu", "ram_mb", "gpu"],
                condition=Q(status="queued"),
                name="deployment_queued_size",
            ),
            # Which queued deployments hold a starvation reservation: the oldest
            # (scheduler/incremental.py).
            models.Index(
                fields=["cluster", "queued_at"],
                condition=Q(status="queued"),
                name="deployment_queued_age",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="deployment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=0, priority__lte=MAX_PRIORITY),
                name="deployment_priority_range",
            ),
            models.CheckConstraint(
                condition=Q(**{f"{name}__gte": 0 for name in NAMES}),
                name="deployment_resources_ge_0",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=HOLDS_ROOM) | Q(started_at__isnull=False),
                name="deployment_running_has_started_at",
            ),
            models.CheckConstraint(
                condition=(Q(status=Status.STOPPING) & ~Q(stopping_to=""))
                | (~Q(status=Status.STOPPING) & Q(stopping_to="")),
                name="deployment_stopping_has_outcome",
            ),
            models.CheckConstraint(
                condition=~Q(status=Status.QUEUED) | Q(queued_at__isnull=False),
                name="deployment_queued_has_queued_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def resources(self) -> Resources:
        return Resources.of(self)

    @property
    def organization_id(self) -> int:
        return self.cluster.organization_id


for _dimension in DIMENSIONS:
    Deployment.add_to_class(_dimension.name, resource_field(_dimension))


class Dependency(models.Model):
    """`dependent` waits until `dependency` meets `condition`.

    A dependency always has a smaller pk than its dependent (it must exist when the
    dependent is created), which makes the graph acyclic by construction and gives the
    lock order for cascades: pk ascending.
    """

    # No index of its own: dependency_unique_pair (dependent, dependency) serves it.
    dependent = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="dependency_links", db_index=False
    )
    dependency = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="dependent_links"
    )
    condition = models.CharField(max_length=16, choices=Condition.choices)

    class Meta:
        ordering = ["dependent_id", "dependency_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dependent", "dependency"], name="dependency_unique_pair"
            ),
            models.CheckConstraint(
                condition=Q(dependency__lt=models.F("dependent")),
                name="dependency_precedes_dependent",
            ),
            models.CheckConstraint(
                condition=Q(condition__in=Condition.values), name="dependency_condition_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dependent_id} waits for {self.dependency_id} to be {self.condition}"


class DeploymentEvent(models.Model):
    """One status change of a deployment, with who or what caused it."""

    # No index of its own: event_deployment_at (deployment, at) serves deployment_id.
    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    at = models.DateTimeField()
    from_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        help_text="The user who acted; empty when the scheduler did.",
    )
    related_deployment = models.ForeignKey(
        Deployment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The preemptor, the victim, or the dependency this change is about.",
    )

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["deployment", "at"], name="event_deployment_at")]

    def __str__(self) -> str:
        return f"{self.deployment_id}: {self.from_status or 'new'} -> {self.to_status}"


class DeploymentLog(models.Model):
    """The last lines of a deployment's output, kept when its workload ends."""

    MAX_LINES = 1000

    deployment = models.OneToOneField(
        Deployment, on_delete=models.CASCADE, primary_key=True, related_name="log"
    )
    lines = models.JSONField(default=list)
    truncated = models.BooleanField(
        default=False, help_text="The workload wrote more lines than are kept."
    )
    source = models.CharField(max_length=16, help_text="The runtime kind that ran it.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"log of {self.deployment_id}"
