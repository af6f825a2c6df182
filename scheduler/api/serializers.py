"""The queue endpoint's answer."""

from __future__ import annotations

from rest_framework import serializers

from clusters.api.serializers import ResourcesSerializer


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
