"""`/api/flows/`: stored flows by name. A script that does not compile is refused (400, line)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from rest_framework import serializers, viewsets

from executions.models import Flow, validate_name
from executions.permissions import ModelPermissions

from .pagination import Page
from .schema import StrictStrings
from .unserved import WarnsWhenUnserved, warning_field


class FlowSerializer(StrictStrings, serializers.ModelSerializer):
    """A flow: a Python script with `handler(system, this)`; each save bumps `revision`."""

    warning = warning_field()

    class Meta:
        model = Flow
        fields = [
            "name", "script", "description", "timeout", "queue", "error_handler", "retry_policy", "recovery",
            "enabled", "revision",
            "created_at", "updated_at", "warning",
        ]
        read_only_fields = ["revision", "created_at", "updated_at"]
        extra_kwargs: dict[str, dict[str, Any]] = {
            "script": {"trim_whitespace": False},
            "description": {"help_text": "What the flow does."},
        }

    def build_standard_field(self, field_name: str, model_field: Any) -> Any:
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if field_name == "name":
            # Not trimmed: a name with spaces around it is refused (validate_name), not
            # quietly changed, and its length is what was sent.
            field_kwargs["trim_whitespace"] = False
            field_kwargs["validators"] = [
                *field_kwargs.get("validators", []), validate_name
            ]
        return field_class, field_kwargs

    def validate_timeout(self, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise serializers.ValidationError("timeout must be a positive number of seconds")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """`error_handler` names another stored flow (checked by the model, as in the admin);
        a PATCH that touches neither it nor the name leaves it as it is."""
        if "error_handler" not in attrs and "name" not in attrs:
            return attrs
        flow = Flow(
            name=attrs.get("name", getattr(self.instance, "name", "")),
            error_handler=attrs.get("error_handler", getattr(self.instance, "error_handler", "")),
        )
        try:
            flow.check_error_handler()
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class FlowViewSet(WarnsWhenUnserved, viewsets.ModelViewSet):
    """Stored flows, looked up by name. Reading needs `view_flow`, changing `add/change/delete`."""

    pagination_class = Page  # ?limit at most 1000
    queryset = Flow.objects.all()
    serializer_class = FlowSerializer
    permission_classes = [ModelPermissions]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    filterset_fields = {"name": ["exact", "icontains"], "enabled": ["exact"], "queue": ["exact"]}
    ordering_fields = ["name", "created_at", "updated_at", "revision"]
    ordering = ["name"]
