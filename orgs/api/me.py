"""GET /api/v1/auth/me: the current user and their memberships.

Here rather than in accounts: memberships are an orgs concept, and accounts sits below
orgs.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import UserSerializer
from hypervisor.serializers import ModelSerializer
from orgs.models import Membership


class MembershipSummarySerializer(ModelSerializer):
    organization = serializers.IntegerField(source="organization_id")
    organization_name = serializers.CharField(source="organization.name")
    role = serializers.CharField(source="group.name")

    class Meta:
        model = Membership
        fields = ["organization", "organization_name", "role"]


class MeSerializer(UserSerializer):
    memberships = MembershipSummarySerializer(many=True, read_only=True)

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "memberships"]
        read_only_fields = fields


@extend_schema(tags=["auth"])
class MeView(APIView):
    @extend_schema(summary="The current user and their memberships", responses=MeSerializer)
    def get(self, request: Request) -> Response:
        memberships = Membership.objects.select_related("organization", "group")
        user = (
            get_user_model()
            .objects.prefetch_related(Prefetch("memberships", queryset=memberships))
            .get(pk=request.user.pk)
        )
        return Response(MeSerializer(user).data)
