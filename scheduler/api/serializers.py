"""The queue endpoint's answer."""

from __future__ import annotations

from rest_framework import serializers

from clusters.api.serializers import ResourcesSerializer
from scheduler.selectors import QUEUE_PAGE, QUEUE_PAGE_MAX


class QueueQuerySerializer(serializers.Serializer):
    """The queue's query parameters: a bad value is 400 naming it."""

    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**63 - 1)
    limit = serializers.IntegerField(
        required=False, default=QUEUE_PAGE, min_value=1, max_value=QUEUE_PAGE_MAX
    )


class QueueDeploymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    priority = serializers.IntegerField()
    resources = ResourcesSerializer()
    queued_at = serializers.DateTimeField(allow_null=True)


class QueueEntrySerializer(serializers.Serializer):
    position = serializers.IntegerField()
    deployment = QueueDeploymentSerializer()
    reason = serializers.CharField()
    reserved = serializers.BooleanField()
