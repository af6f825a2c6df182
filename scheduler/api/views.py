"""A cluster's queue, explained: the planner's order and reasons (GET /clusters/{id}/queue).

Here rather than in the clusters app: it asks the scheduler, which sits above clusters.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clusters.selectors import cluster_list
from orgs.api.viewsets import OrganizationScopedViewSet
from scheduler.api.serializers import QueueEntrySerializer, QueueQuerySerializer
from scheduler.selectors import cluster_queue

NOT_FOUND = {404: OpenApiResponse(description="Not found, or not in your organizations.")}


@extend_schema(tags=["clusters"])
class ClusterQueueViewSet(OrganizationScopedViewSet):
    """Only the `queue` route of a cluster (the cluster itself: `ClusterViewSet`)."""

    selector = staticmethod(cluster_list)

    @extend_schema(
        summary="The cluster's queue, explained",
        description="The waiting deployments (`queued`, then `pending`) in the order the "
        "scheduler will consider them, with a `reason` a person can act on (for a queued "
        "deployment, the one its cluster's last scheduling pass gave). `reserved` marks a "
        "deployment holding a starvation reservation. One page at a time: `offset` "
        "(default 0) and `limit` (default 500, at most 5,000); the header `X-Total-Count` "
        "gives how many wait in all. A page costs the same whatever the queue holds.",
        parameters=[
            OpenApiParameter(
                "offset", OpenApiTypes.INT, description="Skip this many (default 0).", default=0
            ),
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                description="At most this many (1 to 5,000; default 500).",
                default=500,
            ),
            OpenApiParameter(
                "X-Total-Count",
                OpenApiTypes.INT,
                location=OpenApiParameter.HEADER,
                response=True,
                description="How many deployments wait in all.",
            ),
        ],
        responses={
            200: QueueEntrySerializer(many=True),
            400: OpenApiResponse(description="A bad `offset` or `limit`, named."),
            **NOT_FOUND,
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def queue(self, request: Request, pk: str) -> Response:
        cluster = self.get_object()
        query = QueueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = cluster_queue(cluster=cluster, **query.validated_data)
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
            for item in page.items
        ]
        return Response(
            QueueEntrySerializer(data, many=True).data,
            status=status.HTTP_200_OK,
            headers={"X-Total-Count": str(page.total)},
        )
