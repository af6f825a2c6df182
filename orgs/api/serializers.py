from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hypervisor import fields as strict
from hypervisor.serializers import ModelSerializer
from orgs.models import Membership, Organization, Role


class OrganizationSerializer(ModelSerializer):
    """An organization as its caller sees it: `invite_code` only for owners and admins."""

    role = serializers.SerializerMethodField()
    invite_code = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "invite_code", "role", "created_at"]
        read_only_fields = ["id", "invite_code", "role", "created_at"]

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices))
    def get_role(self, organization: Organization) -> str:
        return self.context["roles"][organization.pk]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_invite_code(self, organization: Organization) -> str | None:
        permissions = self.context["permissions"](organization.pk)
        return organization.invite_code if "orgs.manage_invite_code" in permissions else None


class OrganizationCreateSerializer(serializers.Serializer):
    name = strict.NameField(max_length=100)


class JoinSerializer(serializers.Serializer):
    invite_code = strict.CharField(max_length=64)


class JoinedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class InviteCodeSerializer(serializers.Serializer):
    invite_code = serializers.CharField()


class MemberUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class MemberSerializer(ModelSerializer):
    user = MemberUserSerializer(read_only=True)
    role = serializers.CharField(source="group.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "role", "created_at"]


class RoleChangeSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
