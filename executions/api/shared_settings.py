"""`/api/settings/`: named JSON values that flows share (`system.setting(name)`), by name."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, viewsets

from executions.models import Setting, validate_name
from executions.permissions import ModelPermissions

from .pagination import Page
from .schema import StrictStrings


class SettingSerializer(StrictStrings, serializers.ModelSerializer):
    """A setting: a name and any JSON value."""

    value = serializers.JSONField(
        allow_null=True, required=False, default=None, help_text="Any JSON value."
    )

    class Meta:
        model = Setting
        fields = ["name", "value", "description", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def build_standard_field(self, field_name: str, model_field: Any) -> Any:
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if field_name == "name":
            # Not trimmed: a name with spaces around it is refused (validate_name), not
            # quietly changed, and its length is what was sent.
            field_kwargs["trim_whitespace"] = False
            field_kwargs["validators"] = [*field_kwargs.get("validators", []), validate_name]
            field_kwargs["help_text"] = "Unique name."
        return field_class, field_kwargs


class SettingViewSet(viewsets.ModelViewSet):
    """Settings, looked up by name. Reading needs `view_setting`, changing `add/change/delete`."""

    pagination_class = Page  # ?limit at most 1000
    queryset = Setting.objects.all()
    serializer_class = SettingSerializer
    permission_classes = [ModelPermissions]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    filterset_fields = {"name": ["exact", "icontains", "startswith"]}
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]
