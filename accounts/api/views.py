"""Register, log in and out, and the CSRF cookie (who am I: `orgs.api.me`)."""

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import (
    LoginSerializer,
    RegisterSerializer,
    UserSerializer,
)
from accounts.services import user_register
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
