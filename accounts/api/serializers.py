import unicodedata

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from accounts.models import ApiToken
from accounts.services import TOKEN_DEFAULT_DAYS, TOKEN_MAX_DAYS
from hypervisor import fields as strict
from hypervisor.serializers import ModelSerializer


class UserSerializer(ModelSerializer):
    # Not EmailField: an account may have no email, and "" is no email address.
    email = serializers.CharField(read_only=True, help_text="Email address; empty if none.")

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email"]
        read_only_fields = fields


class RegisterSerializer(serializers.Serializer):
    username = strict.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = strict.CharField(max_length=128, write_only=True, trim_whitespace=False)
    email = serializers.EmailField(required=False, allow_blank=True, default="")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A demo user (`manage.py demo`)",
            value={"username": "demo-admin", "password": "hypervisor-demo"},
            request_only=True,
        )
    ]
)
class LoginSerializer(serializers.Serializer):
    username = strict.CharField(max_length=150)
    password = strict.CharField(max_length=128, write_only=True, trim_whitespace=False)

    def validate_username(self, value: str) -> str:
        # As Django's login form (`UsernameField`): the sign-in page and the API agree
        # on who a full-width spelling of a name is.
        return unicodedata.normalize("NFKC", value)


class TokenCreateSerializer(serializers.Serializer):
    name = strict.NameField(max_length=100, help_text="What or who uses it.")
    expires_in_days = strict.IntegerField(
        required=False,
        default=TOKEN_DEFAULT_DAYS,
        min_value=1,
        max_value=TOKEN_MAX_DAYS,
        help_text=f"Days until it expires: default {TOKEN_DEFAULT_DAYS}, at most {TOKEN_MAX_DAYS}.",
    )


class TokenSerializer(ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields


class NewTokenSerializer(TokenSerializer):
    token = serializers.SerializerMethodField(
        help_text="The secret: shown in this answer only. Send it as `Authorization: Bearer`."
    )

    class Meta(TokenSerializer.Meta):
        fields = ["id", "name", "token", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields

    def get_token(self, token: ApiToken) -> str:
        return self.context["secret"]
