"""Clusters and their queues."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from clusters import selectors, services
from clusters.api.serializers import (
    ClusterFilterSerializer,
    ClusterSerializer,
    ClusterUpdateSerializer,
)
from clusters.models import Cluster
from orgs.api.viewsets import OrganizationScopedViewSet
from orgs.models import Organization
from orgs.permissions import require_org_permission
from planner import Policy

NOT_FOUND = {404: OpenApiResponse(description="Not found, or not in your organizations.")}
FORBIDDEN = {403: OpenApiResponse(description="Your role does not allow this action.")}


@extend_schema_view(
    list=extend_schema(
        summary="List clusters of your organizations",
        parameters=[
            OpenApiParameter(
                "organization", OpenApiTypes.INT, description="Only this organization's."
            )
        ],
    ),
    retrieve=extend_schema(
        summary="Get a cluster", responses={200: ClusterSerializer, **NOT_FOUND}
    ),
    create=extend_schema(
        summary="Create a cluster (owner, admin)",
        responses={
            201: ClusterSerializer,
            400: OpenApiResponse(description="Field errors."),
            **FORBIDDEN,
        },
    ),
    partial_update=extend_schema(
        summary="Change a cluster (owner, admin)",
        description="Capacity, name, policy, starvation protection, runtime. Shrinking capacity "
        "below what running deployments hold is 409, and so is changing the runtime while "
        "deployments hold room; an unknown or unavailable runtime, or a capacity above what "
        "the runtime has left, is 400. A change triggers a scheduling pass.",
        request=ClusterUpdateSerializer,
        responses={
            200: ClusterSerializer,
            **FORBIDDEN,
            **NOT_FOUND,
            409: OpenApiResponse(description="Below what is allocated."),
        },
    ),
    destroy=extend_schema(
        summary="Delete a cluster (owner, admin)",
        description="409 while it has running or waiting deployments.",
        responses={
            204: None,
            **FORBIDDEN,
            **NOT_FOUND,
            409: OpenApiResponse(description="Still has work."),
        },
    ),
)
@extend_schema(tags=["clusters"])
class ClusterViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    OrganizationScopedViewSet,
):
    serializer_class = ClusterSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "partial_update": "clusters.change_cluster",
        "destroy": "clusters.delete_cluster",
    }
    selector = staticmethod(selectors.cluster_list)
    filter_serializer_class = ClusterFilterSerializer
    filter_kwargs = {"organization": "organization_id"}
    related_scopes = {
        "organization": lambda view: Organization.objects.visible_to(view.request.user)
    }

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return ClusterUpdateSerializer if self.action == "partial_update" else ClusterSerializer

    def organization_id_of(self, cluster: Cluster) -> int:
        return cluster.organization_id

    def perform_create(self, serializer: ClusterSerializer) -> None:
        data = serializer.validated_data
        organization = data["organization"]
        require_org_permission(self.request, organization.pk, "clusters.add_cluster")
        serializer.instance = services.cluster_create(
            organization=organization,
            name=data["name"],
            capacity=data["capacity"],
            policy=Policy(data["policy"]),
            starvation_after_seconds=data.get("starvation_after_seconds"),
            runtime=data.get("runtime"),
        )

    def partial_update(self, request: Request, pk: str) -> Response:
        cluster = self.get_object()
        serializer = self.get_serializer(cluster, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        changes = services.ClusterChanges(
            name=data.get("name"),
            capacity=data.get("capacity"),
            policy=Policy(data["policy"]) if "policy" in data else None,
            starvation_after_seconds=data.get("starvation_after_seconds"),
            starvation_set="starvation_after_seconds" in data,
            runtime=data.get("runtime"),
            runtime_set="runtime" in data,
        )
        services.cluster_update(cluster_id=cluster.pk, changes=changes)
        return Response(ClusterSerializer(self.get_queryset().get(pk=cluster.pk)).data)

    def perform_destroy(self, cluster: Cluster) -> None:
        services.cluster_delete(cluster_id=cluster.pk)
