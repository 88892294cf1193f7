"""The OpenAPI schema's shared parts: one error body, and the error answers every
operation documents, added in one place (`ApiAutoSchema`, REST_FRAMEWORK's
DEFAULT_SCHEMA_CLASS) instead of a copy on each view."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """An error answer. `detail` says what is wrong; a request refused for its input maps
    each field at fault to its messages instead (`{"flow": ["no flow named 'x'"]}`), and
    `non_field_errors` holds what concerns no single field."""

    detail = serializers.CharField(required=False, help_text="What is wrong.")
    non_field_errors = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="Errors that concern the request as a whole.",
    )


# Status code -> when; each operation documents those that apply to it (`_error_codes`).
ERRORS = {
    "400": "Bad input: the body names each field at fault (or `detail`).",
    "401": "No valid credentials (`Authorization: Token <token>`, a session, or Basic).",
    "403": "Authenticated, but not allowed to do this.",
    "404": "No such record (or no such path).",
    "409": "It conflicts with what is stored: a name already taken, or still in use.",
    "405": "The method is not allowed here.",
    "406": "The Accept header asks for a type the API does not answer with.",
    "413": "The request body is larger than AUTOMATION_MAX_BODY_BYTES "
    "(webhook calls: AUTOMATION_WEBHOOK_MAX_BODY_BYTES).",
    "414": "The URL is longer than the web server reads (gunicorn: 8190 bytes in the "
    "request line); answered by the server itself, as an HTML page.",
    "415": "The request body's Content-Type is not one the operation reads.",
    "429": "Too many attempts: wait as long as `Retry-After` says.",
    "503": "The database is unavailable or busy: try again after `Retry-After` seconds.",
}
_WITH_BODY = {"POST", "PUT", "PATCH"}


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, with the error answers each operation can give."""

    def _error_codes(self) -> list[str]:
        codes = ["400", "403", "404", "405", "406", "413", "503"]
        if self.view.get_authenticators():
            codes.append("401")  # views without authentication (token, webhook calls) never
        if self.method in _WITH_BODY:
            codes += ["409", "415"]
        elif self.method == "DELETE":
            codes.append("409")  # still in use
        if self.view.get_throttles():
            codes.append("429")
        return codes

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if "414" not in responses:  # gunicorn's own page, before the request reaches us
            responses["414"] = self._get_response_for_code(
                OpenApiResponse(OpenApiTypes.STR, description=ERRORS["414"]), "414",
                media_types=["text/html"], direction=direction,
            )
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=ERRORS[code]), code,
                    direction=direction,
                )
        return responses


class FlowNameField(serializers.SlugRelatedField):
    """The flow a record starts, by name: required when it is written, null in an answer
    once that flow was deleted (the record stays, starting nothing)."""

    def __init__(self, **kwargs: Any) -> None:
        from executions.models import Flow

        kwargs.setdefault("help_text", "Name of the flow it starts (null once that flow was deleted).")
        super().__init__(slug_field="name", queryset=Flow.objects.all(), **kwargs)


class FlowNameFieldSchema(OpenApiSerializerFieldExtension):
    """A string in requests, a nullable one in answers (COMPONENT_SPLIT_REQUEST)."""

    target_class = FlowNameField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        if direction == "response":
            return {"type": "string", "nullable": True}
        return {"type": "string", "minLength": 1}


# The database cannot hold a NUL character: a text query parameter with one is refused 400.
_NO_NUL = "^[^\\x00]*$"


def no_nul_in_query_text(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """SPECTACULAR_SETTINGS' POSTPROCESSING_HOOKS: every free-text query parameter says
    that it takes no NUL character (which any such filter refuses)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and schema.get("type") == "string" and not (
                    {"enum", "format", "pattern"} & set(schema)
                ):
                    schema["pattern"] = _NO_NUL
    return result


class StrictStrings:
    """A serializer mixin: a text field given a number (or a list, an object) in a JSON
    body is refused naming the field, as the schema says (`type: string`); DRF's CharField
    would quietly turn `7` into `"7"`."""

    def to_internal_value(self, data: Any) -> Any:
        wrong: dict[str, list[str]] = {}
        if hasattr(data, "items") and not hasattr(data, "getlist"):  # JSON, not a form
            wrong = {
                name: ["must be a string"]
                for name, field in self.fields.items()  # type: ignore[attr-defined]
                if isinstance(field, serializers.CharField) and not field.read_only
                and name in data and data[name] is not None and not isinstance(data[name], str)
            }
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except serializers.ValidationError as exc:  # every field at fault, in one answer
            if wrong and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **wrong}) from None
            raise
        if wrong:
            raise serializers.ValidationError(wrong)
        return value
