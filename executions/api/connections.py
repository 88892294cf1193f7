"""`/api/connections/`: stored connections by name. Secrets are written, never read back.

`secrets` is write-only; answers carry `secret_keys`, the names of the secrets that are set.
PUT replaces the secrets (when given); PATCH merges them, and a key set to null removes it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, viewsets

from connectors import registry
from connectors.models import Connection, UnreadableSecrets, misplaced_secret
from executions.models import validate_name
from executions.permissions import ModelPermissions

from .pagination import Page
from .schema import StrictStrings


def _validate_name(name: str) -> str:
    try:
        validate_name(name)  # the one name rule of flows, settings, webhooks and connections
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None
    return name


class ConnectionSerializer(StrictStrings, serializers.ModelSerializer):
    """A connector type with its inputs: `value` in clear, `secrets` encrypted at rest."""

    connector_type = serializers.CharField(
        help_text=f"One of {', '.join(registry.known_types())} (case-insensitive)."
    )
    value = serializers.JSONField(
        required=False, help_text="The non-secret inputs of the connector (a JSON object)."
    )
    secrets = serializers.JSONField(
        write_only=True, required=False,
        help_text="Secret inputs (password, key, auth, ...): stored encrypted, never returned.",
    )
    secret_keys = serializers.SerializerMethodField(
        help_text="Which secrets are set (their names, never their values)."
    )

    class Meta:
        model = Connection
        fields = [
            "name", "connector_type", "value", "secrets", "secret_keys", "queue", "description",
            "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_secret_keys(self, obj: Connection) -> list[str]:
        return obj.secret_keys

    def validate_name(self, value: str) -> str:
        return _validate_name(value)

    def validate_connector_type(self, value: str) -> str:
        kind = registry.normalize(value)
        if not registry.is_known(kind):
            raise serializers.ValidationError(
                f"unknown connector type {value!r}; one of {', '.join(registry.known_types())}"
            )
        return kind

    def validate_value(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("value must be a JSON object")
        problem = misplaced_secret(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_secrets(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("secrets must be a JSON object")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        secrets = attrs.get("secrets")
        if secrets is None:
            return attrs
        stored = self.instance.secrets if self.instance is not None else {}
        if self.partial:
            if isinstance(stored, UnreadableSecrets):
                raise serializers.ValidationError(
                    {"secrets": f"cannot merge into stored secrets: {stored.error}; "
                                "PUT all secrets to replace them"}
                )
            merged = {**stored, **secrets}
            attrs["secrets"] = {k: v for k, v in merged.items() if v is not None}
        else:
            attrs["secrets"] = {k: v for k, v in secrets.items() if v is not None}
        return attrs

    def update(self, instance: Connection, validated_data: dict[str, Any]) -> Connection:
        for field, value in validated_data.items():
            setattr(instance, field, value)
        # Only the fields given: unreadable stored secrets are never written back.
        instance.save(update_fields=[*validated_data, "updated_at"])
        return instance


class ConnectionViewSet(viewsets.ModelViewSet):
    """Stored connections, looked up by name. Reading needs `view_connection`, changing
    `add/change/delete_connection`. Secrets are never in an answer."""

    pagination_class = Page  # ?limit at most 1000
    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer
    permission_classes = [ModelPermissions]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    filterset_fields = {"name": ["exact", "icontains"], "connector_type": ["exact"]}
    ordering_fields = ["name", "connector_type", "created_at", "updated_at"]
    ordering = ["name"]
