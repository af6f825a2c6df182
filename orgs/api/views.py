"""Organizations, invite codes and members."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from hypervisor.ratelimits import check_rate
from orgs import selectors, services
from orgs.api.serializers import (
    InviteCodeSerializer,
    JoinedSerializer,
    JoinSerializer,
    MemberSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
    RoleChangeSerializer,
)
from orgs.api.viewsets import OrganizationScopedViewSet
from orgs.models import Membership, Organization, Role
from orgs.permissions import org_permissions, require_org_permission

NOT_FOUND = {404: OpenApiResponse(description="Not found, or not a member of it.")}
FORBIDDEN = {403: OpenApiResponse(description="Your role does not allow this action.")}


@extend_schema_view(
    list=extend_schema(
        summary="List your organizations",
        description="Each with your `role`; `invite_code` is shown to owners and admins only.",
    ),
    retrieve=extend_schema(
        summary="Get an organization", responses={200: OrganizationSerializer, **NOT_FOUND}
    ),
    destroy=extend_schema(
        summary="Delete an organization (owner)",
        description="Deletes its clusters and their finished deployments. 409 while any "
        "cluster still has running or waiting deployments.",
        responses={
            204: None,
            **FORBIDDEN,
            **NOT_FOUND,
            409: OpenApiResponse(description="Still has work."),
        },
    ),
)
@extend_schema(tags=["organizations"])
class OrganizationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    OrganizationScopedViewSet,
):
    serializer_class = OrganizationSerializer
    selector = staticmethod(selectors.organization_list)
    action_permissions = {
        "retrieve": "orgs.view_organization",
        "destroy": "orgs.delete_organization",
        "invite_code": "orgs.manage_invite_code",
        "members": "orgs.view_membership",
    }

    def get_serializer_class(self) -> type:
        # What the browsable API's forms show: the join form asks for an invite code.
        return JoinSerializer if self.action == "join" else super().get_serializer_class()

    def organization_id_of(self, organization: Organization) -> int:
        return organization.pk

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):
            return context
        roles = dict(
            Membership.objects.filter(user=self.request.user).values_list(
                "organization_id", "group__name"
            )
        )
        context["roles"] = roles
        context["permissions"] = lambda org_id: org_permissions(self.request, org_id)
        return context

    @extend_schema(
        summary="Create an organization",
        description="The creator becomes its owner.",
        request=OrganizationCreateSerializer,
        responses={201: OrganizationSerializer},
        examples=[OpenApiExample("New team", value={"name": "ml-research"}, request_only=True)],
    )
    def create(self, request: Request) -> Response:
        serializer = OrganizationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = services.organization_create(actor=request.user, **serializer.validated_data)
        data = self.get_serializer(organization).data
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, organization: Organization) -> None:
        services.organization_delete(organization=organization)

    @extend_schema(
        summary="Join an organization by invite code",
        description="You join as a developer; joining twice keeps your existing role. "
        "Rate-limited per user (`RATELIMIT_JOIN_USER`) so codes cannot be guessed.",
        request=JoinSerializer,
        responses={200: JoinedSerializer, 400: OpenApiResponse(description="Unknown invite code.")},
    )
    @action(detail=False, methods=["post"])
    def join(self, request: Request) -> Response:
        check_rate(request, group="join", key="user", rate=settings.RATELIMIT_JOIN_USER)
        serializer = JoinSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.organization_join(actor=request.user, **serializer.validated_data)
        organization = membership.organization
        return Response({"id": organization.pk, "name": organization.name, "role": membership.role})

    @extend_schema(
        summary="Rotate the invite code (owner, admin)",
        description="Issues a new code; the old one stops working at once.",
        request=None,
        responses={200: InviteCodeSerializer, **FORBIDDEN, **NOT_FOUND},
    )
    @action(detail=True, methods=["post"], url_path="invite-code")
    def invite_code(self, request: Request, pk: str) -> Response:
        organization = self.get_object()
        code = services.organization_rotate_invite_code(organization=organization)
        return Response({"invite_code": code})

    @extend_schema(
        summary="List members",
        responses={200: MemberSerializer(many=True), **NOT_FOUND},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def members(self, request: Request, pk: str) -> Response:
        organization = self.get_object()
        members = selectors.membership_list(user=request.user, organization_id=organization.pk)
        return Response(MemberSerializer(members, many=True).data)


@extend_schema(tags=["organizations"])
class MemberViewSet(viewsets.GenericViewSet):
    """One member of an organization, addressed by user id."""

    serializer_class = MemberSerializer
    lookup_field = "user_id"

    def get_queryset(self) -> QuerySet[Membership]:
        return selectors.membership_list(
            user=self.request.user, organization_id=self.kwargs.get("organization_pk", 0)
        )

    def _target(self) -> Membership:
        return get_object_or_404(self.get_queryset(), user_id=self.kwargs["user_id"])

    @extend_schema(
        summary="Change a member's role (owner; admin up to admin)",
        description="Only owners make owners or change an owner's role. The last owner "
        "cannot be demoted (409).",
        request=RoleChangeSerializer,
        responses={
            200: MemberSerializer,
            **FORBIDDEN,
            **NOT_FOUND,
            409: OpenApiResponse(description="It would leave no owner."),
        },
        examples=[OpenApiExample("Promote", value={"role": "admin"}, request_only=True)],
    )
    def partial_update(self, request: Request, organization_pk: str, user_id: str) -> Response:
        target = self._target()
        serializer = RoleChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        role = Role(serializer.validated_data["role"])
        require_org_permission(request, target.organization_id, "orgs.change_membership")
        if Role.OWNER in (role, target.role):
            require_org_permission(request, target.organization_id, "orgs.assign_owner")
        # The service checks the caller's role again, under the row locks.
        services.membership_change_role(target=target, role=role, actor=request.user)
        return Response(MemberSerializer(target).data)

    @extend_schema(
        summary="Remove a member (owner; admin up to admin) or leave",
        description="Any member may remove themselves. The last owner cannot leave (409).",
        responses={
            204: None,
            **FORBIDDEN,
            **NOT_FOUND,
            409: OpenApiResponse(description="It would leave no owner."),
        },
    )
    def destroy(self, request: Request, organization_pk: str, user_id: str) -> Response:
        target = self._target()
        if target.user_id != request.user.pk:
            require_org_permission(request, target.organization_id, "orgs.delete_membership")
            if target.role == Role.OWNER:
                require_org_permission(request, target.organization_id, "orgs.assign_owner")
        # Leaving: any member, owners included (the last owner is still refused). The
        # service checks the caller's role again, under the row locks.
        services.membership_remove(target=target, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
