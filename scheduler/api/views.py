"""A cluster's queue, explained: the planner's order and reasons (GET /clusters/{id}/queue).

Here rather than in the clusters app: it asks the scheduler, which sits above clusters.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clusters.selectors import cluster_list
from orgs.api.viewsets import OrganizationScopedViewSet
from scheduler.api.serializers import QueueEntrySerializer
from scheduler.selectors import cluster_queue

NOT_FOUND = {404: OpenApiResponse(description="Not found, or not in your organizations.")}


@extend_schema(tags=["clusters"])
class ClusterQueueViewSet(OrganizationScopedViewSet):
    """Only the `queue` route of a cluster (the cluster itself: `ClusterViewSet`)."""

    selector = staticmethod(cluster_list)

    @extend_schema(
        summary="The cluster's queue, explained",
        description="Every waiting deployment (`queued`, then `pending`) in the order the "
        "scheduler will consider them, with a `reason` a person can act on. `reserved` marks "
        "a deployment holding a starvation reservation.",
        responses={200: QueueEntrySerializer(many=True), **NOT_FOUND},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def queue(self, request: Request, pk: str) -> Response:
        cluster = self.get_object()
        items = cluster_queue(cluster=cluster)
        data = [
            {
                "position": item.position,
                "deployment": {
                    "id": item.deployment.pk,
                    "name": item.deployment.name,
                    "status": item.deployment.status,
                    "priority": item.deployment.priority,
                    "resources": item.deployment.resources,
                    "queued_at": item.deployment.queued_at,
                },
                "reason": item.reason,
                "reserved": item.reserved,
            }
            for item in items
        ]
        return Response(QueueEntrySerializer(data, many=True).data, status=status.HTTP_200_OK)
