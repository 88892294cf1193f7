"""`/api/webhooks/`: webhooks by name (the key is shown once, on create and on rotate-key),
and the calls `/api/webhooks/<name>/call[/<sub-path>]` (logic in executions.webhooks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from executions import permissions, webhooks
from executions.models import Webhook, validate_name

from .executions import ExecutionSerializer, idempotency_key_parameter
from .pagination import Page
from .schema import ApiAutoSchema, FlowNameField, StrictStrings
from .unserved import WarnsWhenUnserved, note_warning, warning_field


class WebhookSerializer(StrictStrings, serializers.ModelSerializer):
    """A webhook: calls of its URL start `flow` in `mode`. New webhooks start disabled."""

    flow = FlowNameField()
    user: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True,
        help_text="On whose behalf its executions run (who created it).",
    )
    call_url = serializers.SerializerMethodField(help_text="The URL other systems call.")
    warning = warning_field()

    class Meta:
        model = Webhook
        fields = [
            "name", "flow", "enabled", "mode", "description", "user", "call_url",
            "created_at", "updated_at", "warning",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def build_standard_field(self, field_name: str, model_field: Any) -> Any:
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if field_name == "name":
            # Not trimmed: a name with spaces around it is refused (validate_name), not
            # quietly changed, and its length is what was sent.
            field_kwargs["trim_whitespace"] = False
            field_kwargs["validators"] = [*field_kwargs.get("validators", []), validate_name]
        return field_class, field_kwargs

    @extend_schema_field(OpenApiTypes.URI)
    def get_call_url(self, webhook: Webhook) -> str:
        path = reverse("webhook-call", kwargs={"name": webhook.name})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A webhook starts executions for its creator: nobody sets up one in a mode they
        # could not start themselves (the default mode included).
        mode = attrs.get("mode") or (
            self.instance.mode if self.instance is not None else Webhook._meta.get_field(
                "mode").get_default()
        )
        request = self.context.get("request")
        if request is not None and not permissions.may_start(request.user, mode):
            raise serializers.ValidationError({"mode": [
                f"you may not start {mode} executions "
                f"(needs {permissions.start_permission(mode)})"
            ]})
        return attrs


class WebhookWithKeySerializer(WebhookSerializer):
    """A webhook and its key: the only answer that shows the key."""

    key = serializers.CharField(
        read_only=True,
        help_text="Send it as ?key=, the X-Webhook-Key header or \"key\" in a JSON body. "
        "Shown only now: it is stored as a hash.",
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "key"]


class WebhookViewSet(WarnsWhenUnserved, viewsets.ModelViewSet):
    """Webhooks, looked up by name. Reading needs `view_webhook`, changing
    `add/change/delete_webhook`, and its mode the matching start permission."""

    pagination_class = Page  # ?limit at most 1000
    queryset = Webhook.objects.select_related("flow", "user")
    serializer_class = WebhookSerializer
    permission_classes = [permissions.ModelPermissions]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    filterset_fields = ["enabled", "mode", "flow__name"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "rotate_key":
            return [permissions.HasPermission.of("executions.change_webhook")()]
        return super().get_permissions()

    @extend_schema(responses={201: WebhookWithKeySerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create a webhook; the answer holds its key, which is shown only this once."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = webhooks.new_key()
        webhook = note_warning(serializer.save(key_hash=webhooks.hash_key(key), user=request.user))
        webhook.key = key  # type: ignore[attr-defined]  # for the answer only
        data = WebhookWithKeySerializer(webhook, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: WebhookWithKeySerializer})
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request: Request, name: str | None = None) -> Response:
        """Give the webhook a new key (the old one stops working); the answer shows it once."""
        webhook = self.get_object()
        webhook.key = webhooks.rotate_key(webhook)  # type: ignore[attr-defined]
        return Response(WebhookWithKeySerializer(webhook, context=self.get_serializer_context()).data)


_CALL_RESPONSES = {
    200: OpenApiResponse(
        ExecutionSerializer,
        description="Ended in success: the execution (or the answer its flow shaped with "
        "the output `webhook_response`).",
    ),
    202: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description='Still running (or `?async=1`): `{"id": ..., "url": ...}` of the execution; '
        'with `"status": "PENDING", "warning": ...` when it was stored but the broker could not '
        'take its message (the reconciler sends it: do not call again).',
    ),
    400: OpenApiResponse(
        OpenApiTypes.OBJECT, description="The JSON body does not parse, or the "
        "`Idempotency-Key` is not usable.",
    ),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="Missing or wrong key."),
    404: OpenApiResponse(OpenApiTypes.OBJECT, description="No enabled webhook of that name."),
    413: OpenApiResponse(OpenApiTypes.OBJECT, description="The body is too large."),
    422: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="The `Idempotency-Key` was sent before with another method, path, query "
        "or body.",
    ),
    500: OpenApiResponse(
        ExecutionSerializer, description="The execution ended in error or was cancelled."
    ),
}
_CALL_PARAMETERS = [
    OpenApiParameter("key", str, description="The webhook's key (or the X-Webhook-Key header)."),
    OpenApiParameter(
        "X-Webhook-Key", str, OpenApiParameter.HEADER, description="The webhook's key."
    ),
    OpenApiParameter(
        "async", str, enum=["1", "0"], description="1: answer 202 at once, without waiting."
    ),
    idempotency_key_parameter(
        "The same key for the same webhook with the same method, path, query and body within "
        "AUTOMATION_IDEMPOTENCY_SECONDS (a day) starts nothing new: the answer is about the "
        "first execution, as a first call's would be now, with `Idempotent-Replayed: true`; "
        "with a different request, 422."
    ),
]


class _CallSchema(ApiAutoSchema):
    """Two routes (with and without a sub-path) share one view: give them distinct ids."""

    def get_operation_id(self) -> str:
        suffix = "_subpath" if "{subpath}" in self.path else ""
        return f"webhooks_call_{self.method.lower()}{suffix}"


class WebhookCallView(APIView):
    """Call a webhook: starts its flow with the request as `input_value`
    (`method, path, query, headers, json | data`). No user: the key authenticates."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    schema = _CallSchema()

    def _call(self, request: Request, name: str, subpath: str = "") -> Any:
        return webhooks.call(request._request, name, subpath or "")

    @extend_schema(parameters=_CALL_PARAMETERS, responses=_CALL_RESPONSES, tags=["webhook calls"])
    def get(self, request: Request, name: str, subpath: str = "") -> Any:
        return self._call(request, name, subpath)

    @extend_schema(
        parameters=_CALL_PARAMETERS, request={"application/json": OpenApiTypes.OBJECT,
                                              "text/plain": OpenApiTypes.STR},
        responses=_CALL_RESPONSES, tags=["webhook calls"],
    )
    def post(self, request: Request, name: str, subpath: str = "") -> Any:
        return self._call(request, name, subpath)

    @extend_schema(
        parameters=_CALL_PARAMETERS, request={"application/json": OpenApiTypes.OBJECT,
                                              "text/plain": OpenApiTypes.STR},
        responses=_CALL_RESPONSES, tags=["webhook calls"],
    )
    def put(self, request: Request, name: str, subpath: str = "") -> Any:
        return self._call(request, name, subpath)

    @extend_schema(
        parameters=_CALL_PARAMETERS, request={"application/json": OpenApiTypes.OBJECT,
                                              "text/plain": OpenApiTypes.STR},
        responses=_CALL_RESPONSES, tags=["webhook calls"],
    )
    def patch(self, request: Request, name: str, subpath: str = "") -> Any:
        return self._call(request, name, subpath)

    @extend_schema(parameters=_CALL_PARAMETERS, responses=_CALL_RESPONSES, tags=["webhook calls"])
    def delete(self, request: Request, name: str, subpath: str = "") -> Any:
        return self._call(request, name, subpath)
