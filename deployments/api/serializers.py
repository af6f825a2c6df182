from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from clusters.api.serializers import ResourcesSerializer
from deployments.conditions import pending_reason
from deployments.models import (
    MAX_PRIORITY,
    Condition,
    Dependency,
    Deployment,
    DeploymentEvent,
    Status,
)
from deployments.selectors import parse_ordering, parse_statuses
from deployments.services import DependencySpec
from hypervisor import fields as strict
from hypervisor.serializers import ModelSerializer


class DependencyObjectSerializer(serializers.Serializer):
    deployment = strict.IntegerField(min_value=1, max_value=2**63 - 1)
    condition = serializers.ChoiceField(choices=Condition.choices, default=Condition.SUCCEEDED)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "description": "A deployment id: condition `succeeded`."},
            {
                "type": "object",
                "properties": {
                    "deployment": {"type": "integer"},
                    "condition": {
                        "type": "string",
                        "enum": Condition.values,
                        "default": "succeeded",
                    },
                },
                "required": ["deployment"],
            },
        ]
    }
)
class DependsOnItemField(serializers.Field):
    """An id (condition `succeeded`) or `{"deployment": id, "condition": ...}`."""

    default_error_messages = {
        # Braces doubled: DRF formats the message with str.format.
        "invalid": 'Expected a deployment id or {{"deployment": id, "condition": ...}}.'
    }

    def to_internal_value(self, data) -> DependencySpec:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            data = {"deployment": data}
        if not isinstance(data, dict):
            self.fail("invalid")
        item = DependencyObjectSerializer(data=data)
        item.is_valid(raise_exception=True)
        return DependencySpec(
            item.validated_data["deployment"], Condition(item.validated_data["condition"])
        )


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "maxLength": 4096},
        "maxItems": 64,
        "nullable": True,
        "description": "Replaces the image's command (like `docker run IMAGE cmd...`); "
        "null or absent: the image's own.",
        "example": ["python", "train.py", "--epochs", "10"],
    }
)
class CommandField(serializers.JSONField):
    """Passed through as JSON: the service checks it (no coercion of numbers)."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 4096},
        "maxProperties": 64,
        "description": "Environment variables, names `[A-Za-z_][A-Za-z0-9_]*`.",
        "example": {"EPOCHS": "10", "WANDB_MODE": "offline"},
    }
)
class EnvField(serializers.JSONField):
    """Passed through as JSON: the service checks it (no coercion of numbers)."""


class DependencyLinkSerializer(ModelSerializer):
    deployment = serializers.IntegerField(source="dependency_id")
    status = serializers.CharField(source="dependency.status")
    name = serializers.CharField(source="dependency.name")

    class Meta:
        model = Dependency
        fields = ["deployment", "condition", "status", "name"]


def _links(deployment: Deployment) -> list[dict]:
    """What a deployment waits on, in dependency order (prefetched where listed)."""
    return DependencyLinkSerializer(deployment.dependency_links.all(), many=True).data


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A training job after its data preparation (runs on `manage.py demo`'s data)",
            value={
                "cluster": 1,
                "name": "train-resnet-v2",
                "image": "registry.example.com:5000/team/trainer:1.4",
                "resources": {"cpu": 8, "ram_mb": 32768, "gpu": 2},
                "priority": 100,
                "preemptible": False,
                "depends_on": [1, {"deployment": 3, "condition": "finished"}],
                "command": ["python", "train.py", "--epochs", "10"],
                "env": {"WANDB_MODE": "offline"},
            },
            request_only=True,
        )
    ]
)
class DeploymentSerializer(ModelSerializer):
    organization = serializers.IntegerField(source="cluster.organization_id", read_only=True)
    name = strict.NameField(max_length=100)
    resources = ResourcesSerializer()
    priority = strict.IntegerField(min_value=0, max_value=MAX_PRIORITY, default=0)
    preemptible = serializers.BooleanField(default=True)
    # Not trimmed: " ubuntu" or "ubuntu\n" is not a reference, and saying so beats
    # silently storing something other than what was sent.
    image = strict.CharField(
        max_length=512, trim_whitespace=False, help_text="A Docker/OCI image reference."
    )
    depends_on = serializers.SerializerMethodField()
    command = CommandField(required=False, allow_null=True, default=None)
    env = EnvField(required=False, default=dict)
    status_reason = serializers.SerializerMethodField()
    created_by_username = serializers.CharField(
        source="created_by.username", read_only=True, default=None
    )

    class Meta:
        model = Deployment
        fields = [
            "id",
            "cluster",
            "organization",
            "name",
            "image",
            "resources",
            "priority",
            "preemptible",
            "depends_on",
            "command",
            "env",
            "status",
            "status_reason",
            "exit_code",
            "preemption_count",
            "created_by",
            "created_by_username",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "status_reason",
            "exit_code",
            "preemption_count",
            "created_by",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "updated_at",
        ]
        # An integer id: without it, 1.5 would be read as cluster 1.
        extra_kwargs = {"cluster": {"pk_field": strict.IntegerField()}}

    @extend_schema_field(serializers.CharField())
    def get_status_reason(self, deployment: Deployment) -> str:
        """Why it waits, in words; for a pending one, from its dependencies' live statuses."""
        if deployment.status == Status.PENDING:
            return pending_reason(deployment)
        return deployment.status_reason

    @extend_schema_field(DependencyLinkSerializer(many=True))
    def get_depends_on(self, deployment: Deployment) -> list[dict]:
        return _links(deployment)


class DependsOnField(serializers.ListField):
    """Written as ids or objects (DependsOnItemField); read back as the links, as
    DeploymentSerializer shows them, so that the create serializer renders its answer.

    The length is checked before any item (`DEPLOYMENT_MAX_DEPENDENCIES`): a list of
    180,000 ids is refused at once instead of validated item by item."""

    def to_internal_value(self, data) -> list[DependencySpec]:
        limit = settings.DEPLOYMENT_MAX_DEPENDENCIES
        if isinstance(data, list) and len(data) > limit:
            self.fail("max_length", max_length=limit)
        return super().to_internal_value(data)

    def get_attribute(self, instance: Deployment) -> Deployment:
        return instance

    def to_representation(self, deployment: Deployment) -> list[dict]:
        return _links(deployment)


# Reads a submission; once the service has created the deployment, renders it like
# DeploymentSerializer (one serializer per create, not two).
class DeploymentCreateSerializer(DeploymentSerializer):
    depends_on = DependsOnField(
        child=DependsOnItemField(),
        required=False,
        default=list,
        help_text="At most `DEPLOYMENT_MAX_DEPENDENCIES` items (default 100).",
    )

    class Meta(DeploymentSerializer.Meta):
        pass


MAX_ID = 2**63 - 1


class DeploymentFilterSerializer(serializers.Serializer):
    """The list's query parameters (shape only), named as `deployment_search` takes them
    through the viewset's `filter_kwargs`."""

    cluster = strict.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    organization = strict.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    # Repeatable (`status=a&status=b`) and comma-separated (`status=a,b`) alike.
    status = serializers.ListField(
        child=strict.CharField(max_length=200), required=False, max_length=20
    )
    search = strict.CharField(required=False, allow_blank=True, max_length=200)
    priority_min = strict.IntegerField(required=False, min_value=0, max_value=MAX_PRIORITY)
    priority_max = strict.IntegerField(required=False, min_value=0, max_value=MAX_PRIORITY)
    created_by = strict.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    created_by_username = strict.CharField(required=False, allow_blank=True, max_length=150)
    ordering = strict.CharField(required=False, allow_blank=True, max_length=200)

    def validate_status(self, values: list[str]) -> tuple[str, ...]:
        return parse_statuses(values)

    def validate_ordering(self, value: str) -> tuple[str, ...]:
        return parse_ordering(value)

    def validate(self, data: dict) -> dict:
        low, high = data.get("priority_min"), data.get("priority_max")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError(
                {"priority_min": ["Must not be greater than priority_max."]}
            )
        return data


class DeploymentEventSerializer(ModelSerializer):
    actor = serializers.CharField(
        source="actor.username",
        default=None,
        allow_null=True,
        read_only=True,
        help_text="The username of who acted; null: the scheduler.",
    )
    related_deployment = serializers.IntegerField(source="related_deployment_id", allow_null=True)

    class Meta:
        model = DeploymentEvent
        fields = ["at", "from_status", "to_status", "reason", "actor", "related_deployment"]


class LogQuerySerializer(serializers.Serializer):
    tail = serializers.IntegerField(
        required=False, default=200, min_value=1, max_value=10_000, help_text="Lines, newest last."
    )


class DeploymentLogsSerializer(serializers.Serializer):
    lines = serializers.ListField(child=serializers.CharField(), help_text="Oldest first.")
    truncated = serializers.BooleanField(help_text="There were more lines than shown.")
    source = serializers.CharField(help_text="The runtime kind (`docker`, `libvirt`), or `manual`.")
