"""`/api/auth/`: API tokens (django-rest-knox). `POST token/` with a username and password
answers `{"token", "expiry"}`; `POST logout/` revokes the token it is called with,
`POST logoutall/` every token of its user. Tokens are kept only as SHA-512 digests."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from knox import views as knox_views
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(help_text="The user's username.")
    password = serializers.CharField(
        help_text="The user's password.", trim_whitespace=False, style={"input_type": "password"}
    )


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send it as `Authorization: Token <token>`. Shown once; kept only as a hash."
    )
    expiry = serializers.DateTimeField(
        allow_null=True, help_text="When it stops working; null = until revoked."
    )


def issue_token(user: Any) -> dict[str, Any]:
    """Create a new API token for `user`; the answer is the only place the token appears."""
    instance, token = AuthToken.objects.create(user)
    return {"token": token, "expiry": instance.expiry.isoformat() if instance.expiry else None}


class TokenView(APIView):
    """Exchange a username and password for a new API token."""

    authentication_classes: list[Any] = []  # credentials come in the body; no CSRF dance
    permission_classes = [AllowAny]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={201: TokenSerializer, 400: inline_serializer(
            "TokenError", {"non_field_errors": serializers.ListField(child=serializers.CharField())}
        )},
        auth=[],
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        payload = TokenRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=payload.validated_data["username"],
            password=payload.validated_data["password"],
        )
        if user is None:
            return Response(
                {"non_field_errors": ["wrong username or password"]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(issue_token(user), status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses={204: None}, tags=["auth"])
class LogoutView(knox_views.LogoutView):
    """Revoke the token this call is authenticated with."""


@extend_schema(request=None, responses={204: None}, tags=["auth"])
class LogoutAllView(knox_views.LogoutAllView):
    """Revoke every token of the calling user."""
