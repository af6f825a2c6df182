from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from hypervisor.serializers import ModelSerializer
from orgs.models import Membership


class UserSerializer(ModelSerializer):
    # Not EmailField: an account may have no email, and "" is no email address.
    email = serializers.CharField(read_only=True, help_text="Email address; empty if none.")

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email"]
        read_only_fields = fields


class RegisterSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    email = serializers.EmailField(required=False, allow_blank=True, default="")


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


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
