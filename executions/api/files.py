"""`/api/files/`: files that flows and users share (`system.file(name)`), by name.

The content crosses JSON as base64 (`content_base64`); `content` takes text (UTF-8) instead.
A file over AUTOMATION_MAX_FILE_BYTES is refused with 413 naming the limit. Only JSON bodies
are read: a form would drop an empty `content_base64` as absent and a garbled one as empty,
and either would then change the file without saying so.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser

from executions.engine.stored import file_too_large
from executions.models import File
from executions.permissions import ModelPermissions

from .pagination import Page
from .schema import StrictStrings


class FileTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "file_too_large"


class FileSerializer(StrictStrings, serializers.ModelSerializer):
    """A file: a unique name, its content (base64 in `content_base64`, or text in
    `content`), size and content type. Lists leave the content out."""

    content_base64 = serializers.CharField(
        required=False, trim_whitespace=False, help_text="The content, base64-encoded.")
    content = serializers.CharField(
        required=False, write_only=True, trim_whitespace=False, allow_blank=True,
        help_text="The content as text (stored as UTF-8), instead of content_base64.")
    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True)

    class Meta:
        model = File
        fields = ["name", "content_base64", "content", "size", "content_type", "user",
                  "created_at", "updated_at"]
        read_only_fields = ["size", "user", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        text, encoded = attrs.pop("content", None), attrs.pop("content_base64", None)
        if text is not None and encoded is not None:
            raise serializers.ValidationError({"content": "give content or content_base64, not both"})
        if encoded is not None:
            try:
                attrs["data"] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise serializers.ValidationError({"content_base64": "not valid base64"}) from None
        elif text is not None:
            attrs["data"] = text.encode("utf-8")
        too_large = file_too_large(len(attrs.get("data", b"")))
        if too_large:
            raise FileTooLarge({"content": too_large})
        return attrs

    def _store(self, instance: File, attrs: dict[str, Any]) -> File:
        data = attrs.pop("data", None)
        for key, value in attrs.items():
            setattr(instance, key, value)
        if data is not None:
            instance.set_content(data)
        instance.user = self.context["request"].user
        instance.save()
        return instance

    def create(self, validated_data: dict[str, Any]) -> File:
        return self._store(File(), validated_data)

    def update(self, instance: File, validated_data: dict[str, Any]) -> File:
        return self._store(instance, validated_data)

    def to_representation(self, instance: File) -> dict[str, Any]:
        data = super().to_representation(instance)
        view = self.context.get("view")
        if getattr(view, "action", None) == "list":
            data.pop("content_base64", None)
        else:
            data["content_base64"] = base64.b64encode(bytes(instance.content)).decode("ascii")
        return data


class FileViewSet(viewsets.ModelViewSet):
    """Files, looked up by name ('/' may be part of it). Reading needs `view_file`,
    changing `add/change/delete_file`."""

    pagination_class = Page  # ?limit at most 1000
    parser_classes = [JSONParser]  # a form body answers 415
    queryset = File.objects.select_related("user")
    serializer_class = FileSerializer
    permission_classes = [ModelPermissions]
    lookup_field = "name"
    lookup_value_regex = ".+"
    filterset_fields = {"name": ["exact", "icontains", "startswith"], "content_type": ["exact"]}
    ordering_fields = ["name", "size", "created_at", "updated_at"]
    ordering = ["name"]

    def get_queryset(self) -> Any:
        found = super().get_queryset()
        return found.defer("content") if self.action == "list" else found
