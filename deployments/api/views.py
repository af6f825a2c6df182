"""Deployments: submit, list, act on, and read their history."""

from __future__ import annotations

from django.db.models import F, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from clusters.models import Cluster
from deployments import selectors, services
from deployments.api.serializers import (
    DeploymentCreateSerializer,
    DeploymentEventSerializer,
    DeploymentFilterSerializer,
    DeploymentLogsSerializer,
    DeploymentSerializer,
    LogQuerySerializer,
)
from deployments.models import Deployment, Status
from deployments.permissions import may_act_on, may_submit
from deployments.services import Action, DeploymentSpec
from orgs.api.viewsets import OrganizationScopedViewSet
from orgs.permissions import ROLE_DENIED, org_permissions, remember_role

NOT_FOUND = {404: OpenApiResponse(description="Not found, or not in your organizations.")}
FORBIDDEN = {403: OpenApiResponse(description="Your role does not allow this action.")}

CONFLICT = {409: OpenApiResponse(description="The deployment's status does not allow it.")}


STATUSES = ", ".join(f"`{status}`" for status in Status.values)
ORDERINGS = ", ".join(f"`{field}`" for field in selectors.ORDERING_FIELDS)
LIST_PARAMETERS = [
    OpenApiParameter("cluster", OpenApiTypes.INT, description="Only this cluster's."),
    OpenApiParameter("organization", OpenApiTypes.INT, description="Only this organization's."),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        description=f"One or more statuses, separated by commas (or the parameter repeated): "
        f"{STATUSES}.",
        examples=[OpenApiExample("Waiting", value="pending,queued")],
    ),
    OpenApiParameter(
        "search",
        OpenApiTypes.STR,
        description="Text that the name or the image contains (case-insensitive).",
        examples=[OpenApiExample("An image", value="trainer")],
    ),
    OpenApiParameter("priority_min", OpenApiTypes.INT, description="Priority at least this."),
    OpenApiParameter("priority_max", OpenApiTypes.INT, description="Priority at most this."),
    OpenApiParameter("created_by", OpenApiTypes.INT, description="Submitted by this user id."),
    OpenApiParameter(
        "created_by_username",
        OpenApiTypes.STR,
        description="Submitted by this username (case-insensitive, exact).",
    ),
    OpenApiParameter(
        "ordering",
        OpenApiTypes.STR,
        description=f"Sort by one or more fields, separated by commas, each optionally "
        f"prefixed with `-` for descending: {ORDERINGS}. Empty timestamps sort last; ties "
        "are broken by `id`. Default: `id`.",
        examples=[OpenApiExample("Highest priority, oldest first", value="-priority,created_at")],
    ),
]


def _act_schema(verb: str, applies_to: str) -> dict:
    return extend_schema(
        summary=f"{verb.capitalize()} a deployment",
        description=f"Applies to {applies_to} deployments. Developers act on their own "
        "deployments, owners and admins on anyone's. Triggers a scheduling pass.",
        request=None,
        responses={200: DeploymentSerializer, **FORBIDDEN, **NOT_FOUND, **CONFLICT},
    )


def _clusters_of_the_caller(view: OrganizationScopedViewSet) -> QuerySet[Cluster]:
    # The scoping joins the caller's membership: its group (the caller's role) comes
    # along, and the create's permission check needs no query of its own.
    clusters = Cluster.objects.visible_to(view.request.user)
    return clusters.annotate(caller_group_id=F("organization__memberships__group"))


@extend_schema_view(
    list=extend_schema(
        summary="List deployments of your organizations",
        description="Filters combine (all must hold). An unknown `status` or `ordering` "
        "value is 400 naming the field and the values it accepts.",
        parameters=LIST_PARAMETERS,
    ),
    retrieve=extend_schema(
        summary="Get a deployment", responses={200: DeploymentSerializer, **NOT_FOUND}
    ),
)
@extend_schema(tags=["deployments"])
class DeploymentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    OrganizationScopedViewSet,
):
    serializer_class = DeploymentSerializer
    selector = staticmethod(selectors.deployment_search)
    filter_serializer_class = DeploymentFilterSerializer
    filter_kwargs = {
        "cluster": "cluster_id",
        "organization": "organization_id",
        "status": "statuses",
        "created_by": "created_by_id",
    }
    related_scopes = {"cluster": _clusters_of_the_caller}

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return DeploymentCreateSerializer if self.action == "create" else DeploymentSerializer

    def organization_id_of(self, deployment: Deployment) -> int:
        return deployment.cluster.organization_id

    @extend_schema(
        summary="Submit a deployment (owner, admin, developer)",
        description="Starts `pending` when it has unmet dependencies, else `queued`; the "
        "scheduling pass it triggers may start it at once (in the embedded setup, the answer "
        "already shows that). A request larger than the cluster's capacity is 400, and so is "
        "an unknown, foreign or already impossible dependency. `depends_on` items are ids "
        "(condition `succeeded`) or objects `{deployment, condition}`; the answer shows objects.",
        request=DeploymentCreateSerializer,
        responses={
            201: DeploymentSerializer,
            400: OpenApiResponse(description="Field errors."),
            **FORBIDDEN,
        },
    )
    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        cluster = data["cluster"]
        remember_role(request, cluster.organization_id, group_id=cluster.caller_group_id)
        if not may_submit(permissions=org_permissions(request, cluster.organization_id)):
            raise PermissionDenied(ROLE_DENIED)
        spec = DeploymentSpec(
            name=data["name"],
            image=data["image"],
            resources=data["resources"],
            priority=data["priority"],
            preemptible=data["preemptible"],
            depends_on=tuple(data["depends_on"]),
            command=data["command"],
            env=data["env"],
        )
        created = services.deployment_create(actor=request.user, cluster=cluster, spec=spec)
        # Read back through the selector, after the commit (and, in the embedded setup,
        # after the pass it triggered, whose outcome the answer shows): the view knows
        # nothing of what the service or the pass wrote.
        # What DRF's save() does: the serializer now renders the instance it described.
        serializer.instance = self.get_queryset().get(pk=created.pk)
        return Response(serializer.data, status=status.HTTP_201_CREATED)

    def _act(self, request: Request, action: Action) -> Response:
        deployment = self.get_object()
        permissions = org_permissions(request, deployment.cluster.organization_id)
        if not may_act_on(permissions=permissions, deployment=deployment, user=request.user):
            raise PermissionDenied(ROLE_DENIED)
        services.deployment_act(actor=request.user, deployment_id=deployment.pk, action=action)
        return Response(DeploymentSerializer(self.get_queryset().get(pk=deployment.pk)).data)

    @_act_schema("complete", "starting and running")
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str) -> Response:
        return self._act(request, Action.COMPLETE)

    @_act_schema("fail", "starting and running")
    @action(detail=True, methods=["post"])
    def fail(self, request: Request, pk: str) -> Response:
        return self._act(request, Action.FAIL)

    @_act_schema("cancel", "pending, queued, starting and running")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._act(request, Action.CANCEL)

    @extend_schema(
        summary="The deployment's status changes, oldest first",
        description="Each with its reason (a preemption names the preemptor, a start what "
        "made room) and its actor (null: the scheduler).",
        responses={200: DeploymentEventSerializer(many=True), **NOT_FOUND},
    )
    @action(detail=True, methods=["get"], serializer_class=DeploymentEventSerializer)
    def events(self, request: Request, pk: str) -> Response:
        events = selectors.deployment_events(deployment=self.get_object())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(DeploymentEventSerializer(page, many=True).data)

    @extend_schema(
        summary="The workload's output: its last lines",
        description="Read from the runtime while the workload exists; the last 1,000 lines "
        "are kept when it ends. `source` is the runtime kind; a `manual` cluster runs "
        "nothing, so its deployments have no lines.",
        parameters=[LogQuerySerializer],
        responses={200: DeploymentLogsSerializer, **NOT_FOUND},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def logs(self, request: Request, pk: str) -> Response:
        query = LogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        view = selectors.deployment_logs(
            deployment=self.get_object(), tail=query.validated_data["tail"]
        )
        return Response(DeploymentLogsSerializer(view).data)

    @extend_schema(
        summary="What waits on this deployment",
        responses={200: DeploymentSerializer(many=True), **NOT_FOUND},
    )
    @action(detail=True, methods=["get"])
    def dependents(self, request: Request, pk: str) -> Response:
        dependents = selectors.deployment_dependents(
            user=request.user, deployment=self.get_object()
        )
        page = self.paginate_queryset(dependents)
        return self.get_paginated_response(DeploymentSerializer(page, many=True).data)
