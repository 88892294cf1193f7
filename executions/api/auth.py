"""`/api/auth/`: API tokens (django-rest-knox). `POST token/` with a username and password
answers `{"token", "expiry"}`; `POST logout/` revokes the token it is called with,
`POST logoutall/` every token of its user. Tokens are kept only as SHA-512 digests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.utils import extend_schema
from knox import views as knox_views
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from .authentication import TokenAuthentication
from .schema import StrictStrings


class TokenCredentialsSerializer(StrictStrings, serializers.Serializer):
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


class TokenAuthenticationScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of `executions.api.authentication.TokenAuthentication`:
    knox's own (`knoxApiToken`), which drf-spectacular matches on knox's exact class only."""

    target_class = "executions.api.authentication.TokenAuthentication"


def issue_token(user: Any) -> dict[str, Any]:
    """Create a new API token for `user`; the answer is the only place the token appears.

    The user's expired tokens are deleted here (TokenAuthentication does not look at a
    user's other tokens on each call)."""
    AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    instance, token = AuthToken.objects.create(user)
    return {"token": token, "expiry": instance.expiry.isoformat() if instance.expiry else None}


class LoginRateThrottle(SimpleRateThrottle):
    """At most the "login" rate (AUTOMATION_LOGIN_RATE, default 10/minute) of password
    attempts per client address and username, for the token view and the admin login.

    Counts live in Django's default cache: per process with the default local-memory cache,
    so N web processes allow N times the rate (see docs/README-reliability.md)."""

    scope = "login"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        data = request.data if isinstance(request, Request) else request.POST
        username = data.get("username", "") if hasattr(data, "get") else ""
        # Hashed: a username may hold any character, a cache key may not (memcached).
        digest = hashlib.sha256(str(username)[:150].lower().encode()).hexdigest()[:32]
        ident = f"{self.get_ident(request)}:{digest}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AdminLoginThrottleMiddleware:
    """The same throttle on POST /admin/login/ (the admin is plain Django, not DRF)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path == reverse("admin:login"):
            throttle = LoginRateThrottle()
            if not throttle.allow_request(request, None):  # type: ignore[arg-type]
                wait = int(throttle.wait() or 60) + 1
                answer = HttpResponse(
                    f"Too many login attempts; try again in {wait} seconds.\n",
                    status=429, content_type="text/plain; charset=utf-8",
                )
                answer["Retry-After"] = str(wait)
                return answer
        return self.get_response(request)


class TokenView(APIView):
    """Exchange a username and password for a new API token (throttled: LoginRateThrottle)."""

    authentication_classes: list[Any] = []  # credentials come in the body; no CSRF dance
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]
    # A login may come as a form too (`curl -d username=... -d password=...`); the rest of
    # the API reads JSON only (settings.REST_FRAMEWORK).
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        request=TokenCredentialsSerializer,
        responses={201: TokenSerializer},  # 400 and 429: ApiAutoSchema's error body
        auth=[],
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        payload = TokenCredentialsSerializer(data=request.data)
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

    authentication_classes = (TokenAuthentication,)  # the API's, not knox's own


@extend_schema(request=None, responses={204: None}, tags=["auth"])
class LogoutAllView(knox_views.LogoutAllView):
    """Revoke every token of the calling user."""

    authentication_classes = (TokenAuthentication,)  # the API's, not knox's own
