from decimal import Decimal

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from clusters.models import MAX_STARVATION_SECONDS, Cluster
from hypervisor import fields as strict
from hypervisor.resources import DIMENSIONS, Dimension, Resources
from hypervisor.serializers import ModelSerializer
from planner import Policy
from runtime.models import Health, Kind, Runtime


def _api_field(dimension: Dimension) -> serializers.Field:
    maximum = Decimal(dimension.maximum) / dimension.scale
    if dimension.decimals:
        return strict.DecimalField(
            max_digits=len(str(int(maximum))) + dimension.decimals,
            decimal_places=dimension.decimals,
            min_value=Decimal(0),
            max_value=maximum,
            coerce_to_string=False,
            help_text=dimension.api_help,
        )
    return strict.IntegerField(min_value=0, max_value=int(maximum), help_text=dimension.api_help)


class _ResourcesSerializer(serializers.Serializer):
    def to_internal_value(self, data) -> Resources:
        values = super().to_internal_value(data)
        # A partial update (PATCH) skips missing fields, but a vector is always whole.
        missing = [name for name in self.fields if name not in values]
        if missing:
            required = serializers.Field.default_error_messages["required"]
            raise serializers.ValidationError({name: [required] for name in missing})
        return Resources(*(int(values[d.api_field] * d.scale) for d in DIMENSIONS))

    def to_representation(self, resources: Resources) -> dict:
        return {
            d.api_field: float(Decimal(value) / d.scale) if d.decimals else value
            for d, value in zip(DIMENSIONS, resources.values(), strict=True)
        }


# One field per dimension of the registry, in its order.
ResourcesSerializer = type(
    "ResourcesSerializer",
    (_ResourcesSerializer,),
    {
        "__module__": __name__,
        "__doc__": '`{"cpu": cores (up to 3 decimals), "ram_mb": MiB, "gpu": devices}`, '
        "stored exactly.",
        **{d.api_field: _api_field(d) for d in DIMENSIONS},
    },
)


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": Kind.values},
            "status": {"type": "string", "enum": Health.values},
            "status_since": {"type": "string", "format": "date-time"},
        },
        "description": "Where the cluster's deployments run; null: manual (nothing is "
        "started). Written as the runtime's name (or null to detach).",
    }
)
class RuntimeField(serializers.Field):
    """Written as a runtime's name (or null), read as `{name, kind, status, status_since}`.
    Whether the name is known and available is the service's answer."""

    default_error_messages = {"invalid": "Expected a runtime's name, or null."}

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str) or not 0 < len(data) <= 64:
            self.fail("invalid")
        return data

    def to_representation(self, runtime: Runtime) -> dict:
        return {
            "name": runtime.name,
            "kind": runtime.kind,
            "status": runtime.status,
            "status_since": serializers.DateTimeField().to_representation(runtime.status_since),
        }


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A GPU cluster (runs on `manage.py demo`'s data)",
            value={
                "organization": 1,
                "name": "gpu-west",
                "capacity": {"cpu": 64, "ram_mb": 262144, "gpu": 8},
                "policy": "pack",
                "starvation_after_seconds": 3600,
                "runtime": None,
            },
            description="`runtime`: null (manual), or a name from `manage.py runtime list`; "
            "the demo registers `local-docker` when this machine has a Docker engine.",
            request_only=True,
        )
    ]
)
class ClusterSerializer(ModelSerializer):
    name = strict.NameField(max_length=100)
    capacity = ResourcesSerializer()
    allocated = ResourcesSerializer(read_only=True)
    available = ResourcesSerializer(read_only=True)
    policy = serializers.ChoiceField(
        choices=[p.value for p in Policy],
        default=Policy.PACK.value,
        help_text="`pack` (default): maximize what runs, priority by priority, then "
        "utilization; `fifo`: queue order with backfill. See docs/scheduling.md.",
    )
    starvation_after_seconds = strict.IntegerField(
        min_value=1,
        max_value=MAX_STARVATION_SECONDS,
        allow_null=True,
        required=False,
        help_text="Queued longer than this, a deployment holds a reservation. Null: never.",
    )
    runtime = RuntimeField(required=False, allow_null=True, default=None)
    running_count = serializers.IntegerField(read_only=True, default=0)
    waiting_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Cluster
        fields = [
            "id",
            "organization",
            "name",
            "capacity",
            "allocated",
            "available",
            "policy",
            "starvation_after_seconds",
            "runtime",
            "running_count",
            "waiting_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # An integer id: without it, 1.5 would be read as organization 1.
        extra_kwargs = {"organization": {"pk_field": strict.IntegerField()}}
        # Uniqueness of the name is answered by the view (400), not a validator that
        # would need the organization on PATCH.
        validators = []


class ClusterUpdateSerializer(ClusterSerializer):
    class Meta(ClusterSerializer.Meta):
        read_only_fields = ["id", "organization", "created_at", "updated_at"]


class ClusterFilterSerializer(serializers.Serializer):
    """The list's query parameters: a bad value is 400 naming it, like any field."""

    organization = strict.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
