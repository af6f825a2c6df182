"""Register, log in and out, the CSRF cookie (who am I: `orgs.api.me`), and API tokens."""

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import (
    LoginSerializer,
    NewTokenSerializer,
    RegisterSerializer,
    TokenCreateSerializer,
    TokenSerializer,
    UserSerializer,
)
from accounts.models import ApiToken
from accounts.selectors import token_list
from accounts.services import TOKENS_PER_USER, token_create, token_revoke, user_register
from hypervisor.authentication import enforce_csrf
from hypervisor.ratelimits import check_rate

BAD_CREDENTIALS = "Unable to log in with the provided credentials."


@extend_schema(tags=["auth"])
class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    serializer_class = RegisterSerializer  # the browsable API's form

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        """The browsable API opens the form here rather than on a 405."""
        return Response({"detail": "POST {username, password, email?} to create an account."})

    @extend_schema(
        summary="Create an account",
        description="Django's password validators apply. Rate-limited per IP "
        "(`RATELIMIT_REGISTER_IP`). Requires the CSRF header like every unsafe request.",
        request=RegisterSerializer,
        responses={201: UserSerializer, 400: OpenApiResponse(description="Field errors.")},
    )
    def post(self, request: Request) -> Response:
        enforce_csrf(request)
        check_rate(request, group="register", key="ip", rate=settings.RATELIMIT_REGISTER_IP)
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_register(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"])
class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    serializer_class = LoginSerializer  # the browsable API's form

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        """The browsable API opens the form here rather than on a 405."""
        return Response({"detail": "POST {username, password} to sign in."})

    @extend_schema(
        summary="Log in",
        description="Sets the `sessionid` cookie and rotates `csrftoken`. The same answer "
        "for an unknown user and a wrong password. Rate-limited per IP "
        "(`RATELIMIT_LOGIN_IP`) and per username for failed attempts "
        "(`RATELIMIT_LOGIN_USERNAME`).",
        request=LoginSerializer,
        responses={200: UserSerializer, 400: OpenApiResponse(description="Bad credentials.")},
    )
    def post(self, request: Request) -> Response:
        enforce_csrf(request)
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # The backend applies the login limits (accounts.logins): 429 once used up.
        user = authenticate(request, **serializer.validated_data)
        if user is None:
            return Response({"detail": BAD_CREDENTIALS}, status=status.HTTP_400_BAD_REQUEST)
        login(request, user)  # rotates the session key and the CSRF token
        return Response(UserSerializer(user).data)


@extend_schema(tags=["auth"])
class LogoutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Log out", request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        logout(request)  # flushes the session server-side
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["auth"])
class CsrfView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="Set the csrftoken cookie",
        responses=inline_serializer("CsrfToken", {"csrftoken": serializers.CharField()}),
    )
    @method_decorator(ensure_csrf_cookie)
    def get(self, request: Request) -> Response:
        return Response({"csrftoken": get_token(request)})


TOKEN_EXAMPLE = OpenApiExample(
    "A token for CI",
    value={
        "id": 7,
        "name": "ci-nightly",
        "token": "hv_9Wl0cS1yZWFsLXRva2VuLWp1c3QtYW4tZXhhbXBsZS1oZXJl",
        "created_at": "2026-12-05T22:15:00Z",
        "expires_at": "2027-03-05T22:15:00Z",
        "last_used_at": None,
    },
    response_only=True,
)


@extend_schema(tags=["auth"])
class TokenListView(generics.ListAPIView):
    serializer_class = TokenSerializer

    def get_queryset(self):
        return token_list(user=self.request.user)

    @extend_schema(
        summary="Your API tokens",
        description="Without their secrets. Expired tokens stay listed (and answer 401) "
        "until you revoke them. `last_used_at` is updated at most once a minute.",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create an API token",
        description="The answer's `token` is the only time the secret is shown: the server "
        "keeps only its SHA-256 digest. Send it as `Authorization: Bearer <token>` on any "
        "endpoint, with no session and no CSRF header; it acts as you, with your roles. "
        f"Expires after `expires_in_days` (default 90, at most 365). At most "
        f"{TOKENS_PER_USER} unexpired tokens per user (400 beyond).",
        request=TokenCreateSerializer,
        responses={
            201: NewTokenSerializer,
            400: OpenApiResponse(description="Field errors, or too many tokens."),
        },
        examples=[
            OpenApiExample(
                "A token for CI",
                value={"name": "ci-nightly", "expires_in_days": 30},
                request_only=True,
            ),
            TOKEN_EXAMPLE,
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = token_create(user=request.user, **serializer.validated_data)
        answer = NewTokenSerializer(token, context={"secret": secret})
        return Response(answer.data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"])
class TokenDetailView(APIView):
    @extend_schema(
        summary="Revoke an API token",
        description="It stops working at once (401). Another user's token is 404.",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="Its id.")],
        responses={204: None, 404: OpenApiResponse(description="Not one of your tokens.")},
    )
    def delete(self, request: Request, pk: str) -> Response:
        try:
            token_revoke(user=request.user, token_id=int(pk))
        except ApiToken.DoesNotExist:
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
