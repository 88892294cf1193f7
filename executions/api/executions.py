"""`/api/executions/`: list (filtered), retrieve, start (`POST`, optionally waiting), and per
execution `logs/` (tail with `?after=`), `children/`, `cancel/`, `pause/` and `resume/`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from executions import engine, permissions
from executions.engine import idempotency
from executions.engine.records import execution_json
from executions.models import Execution, ExecutionLog

from .filters import StrictFilterSet
from .pagination import Page, refuse_repeated
from .schema import StrictStrings

STARTABLE = [Execution.Type.FLOW, Execution.Type.SCRIPT, Execution.Type.CONNECTION]
_MAX_ID = 2**63 - 1  # larger ids cannot exist (bigint): refuse them as bad input


class ExecutionSerializer(serializers.Serializer):
    """Execution JSON, the flow_api field names (`executions.serializers.execution_json`).

    The fields are declared for the schema only; the shape itself comes from
    `execution_json`, which the webhooks and the shell share.
    """

    id = serializers.IntegerField(read_only=True)
    type = serializers.ChoiceField(Execution.Type.choices, read_only=True)
    name = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(Execution.Status.choices, read_only=True)
    mode = serializers.ChoiceField(Execution.Mode.choices, read_only=True)
    input_value = serializers.JSONField(read_only=True, help_text="The inputs it started with.")
    output_value = serializers.JSONField(read_only=True, help_text="What it saved or returned.")
    message = serializers.CharField(read_only=True, help_text="Status message or error.")
    # Declared fields leave the class namespace (DRF's metaclass): these do not shadow
    # Field.parent / Field.root at run time.
    parent = serializers.IntegerField(  # type: ignore[assignment]
        read_only=True, allow_null=True, help_text="Parent's id."
    )
    root = serializers.IntegerField(  # type: ignore[assignment]
        read_only=True, allow_null=True, help_text="Id of the top of its tree (null at the top)."
    )
    flow = serializers.CharField(read_only=True, allow_null=True, help_text="Name of its flow.")
    flow_revision = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The flow revision it ran."
    )
    trigger = serializers.ChoiceField(Execution.Trigger.choices, read_only=True)
    queue = serializers.CharField(read_only=True, help_text="Worker group that runs it.")
    priority = serializers.ChoiceField(Execution.Priority.choices, read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    ended_at = serializers.DateTimeField(read_only=True, allow_null=True)
    attempt = serializers.IntegerField(read_only=True, help_text="Its attempt, from 1 (retries).")
    previous_attempts = serializers.ListField(
        child=serializers.DictField(), read_only=True,
        help_text="The failed attempts before this one: attempt, started_at, ended_at, status_message.",
    )
    stop_status = serializers.ChoiceField(
        Execution.ENDED, read_only=True, allow_null=True,
        help_text="Asked to stop while its code ran (a cancel: ENDED_CANCELLED; a timeout: "
        "ENDED_ERROR): the status it ends with once its code has stopped. Null otherwise.",
    )
    stop_requested_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When that stop was asked."
    )

    def to_representation(self, instance: Execution) -> dict[str, Any]:
        return execution_json(instance)


class ExecutionStartSerializer(StrictStrings, serializers.Serializer):
    """What to start. `type` defaults to FLOW."""

    type = serializers.ChoiceField(
        STARTABLE, default=Execution.Type.FLOW,
        help_text="FLOW (a stored flow), SCRIPT (inline source) or CONNECTION (a connector call).",
    )
    flow = serializers.CharField(
        required=False, max_length=255, help_text="FLOW: the name of the flow to start."
    )
    script = serializers.CharField(
        required=False, trim_whitespace=False,
        help_text="SCRIPT: Python source with handler(system, this).",
    )
    connection = serializers.CharField(
        required=False, max_length=255, help_text="CONNECTION: the name of a stored connection."
    )
    connector_type = serializers.CharField(
        required=False, max_length=64,
        help_text="CONNECTION: a connector type (REST, SQLPG, ...) for an inline call.",
    )
    input_value = serializers.DictField(
        required=False, default=dict, help_text="The inputs: a JSON object."
    )
    mode = serializers.ChoiceField(
        Execution.Mode.choices, default=Execution.Mode.PRODUCTIVE,
        help_text="productive needs the run permission, development the try permission.",
    )
    name = serializers.CharField(required=False, max_length=255, help_text="A name to show.")
    priority = serializers.ChoiceField(
        Execution.Priority.choices, default=Execution.Priority.NORMAL,
        help_text="Queue priority; children inherit it.",
    )
    wait = serializers.FloatField(
        required=False, min_value=0,
        help_text="Seconds to wait for the end before answering (at most "
        "AUTOMATION_MAX_API_WAIT_SECONDS). The answer is the state when it ended or the wait "
        "ran out.",
    )

    def validate_wait(self, value: float) -> float:
        limit = float(settings.AUTOMATION["MAX_API_WAIT_SECONDS"])
        if value > limit:
            raise serializers.ValidationError(f"wait is at most {limit:g} seconds")
        return value


class ExecutionLogSerializer(serializers.ModelSerializer):
    """One log entry of an execution (`this.log(...)`)."""

    class Meta:
        model = ExecutionLog
        fields = ["id", "created_at", "level", "text", "data"]
        read_only_fields = fields


class LogQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(required=False, min_value=0, max_value=_MAX_ID)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": _MAX_ID})
class IdFilter(django_filters.Filter):
    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", _MAX_ID)
        super().__init__(*args, **kwargs)


class UtcDateTimeField(forms.DateTimeField):
    """An ISO 8601 moment, turned into UTC; offsets no clock uses are refused (the database
    would refuse them with an error instead)."""

    def to_python(self, value: Any) -> datetime | None:
        moment = django_filters.fields.IsoDateTimeField().to_python(value)
        if moment is None:
            return None
        offset = moment.utcoffset()
        if offset is not None and abs(offset) > timedelta(hours=14):
            raise forms.ValidationError("the time zone offset is out of range (at most 14 h)")
        try:
            return moment.astimezone(UTC) if offset is not None else moment
        except OverflowError:
            raise forms.ValidationError("the moment is out of range") from None


class UtcDateTimeFilter(django_filters.Filter):
    field_class = UtcDateTimeField


class ExecutionFilter(StrictFilterSet):
    """Filters of the execution list; several values of status, type or mode match any."""

    status = django_filters.MultipleChoiceFilter(choices=Execution.Status.choices)
    type = django_filters.MultipleChoiceFilter(choices=Execution.Type.choices)
    mode = django_filters.MultipleChoiceFilter(choices=Execution.Mode.choices)
    trigger = django_filters.MultipleChoiceFilter(choices=Execution.Trigger.choices)
    flow = django_filters.CharFilter(field_name="flow__name", help_text="Name of the flow.")
    parent = IdFilter(field_name="parent_id", help_text="Id of the parent.")
    root = IdFilter(field_name="root_id", help_text="Id of the root of the tree.")
    created_after = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )
    created_before = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before (ISO 8601)."
    )

    class Meta:
        model = Execution
        fields = [
            "status", "type", "mode", "trigger", "flow", "parent", "root",
            "created_after", "created_before",
        ]


_ERROR = OpenApiResponse(
    OpenApiTypes.OBJECT, description='`{"field": ["message"]}` or `{"detail": "message"}`'
)
_STARTED = OpenApiResponse(
    ExecutionSerializer,
    description="The execution; with a `warning` (a string) when it was stored but the broker "
    "could not take its message: it stays PENDING and the reconciler sends it. Do not start "
    "it again.",
)
_REPLAYED = OpenApiResponse(
    ExecutionSerializer,
    description="The `Idempotency-Key` was sent before with this request: nothing was started. "
    "The first execution as it is now (after waiting as `wait` says), with the header "
    "`Idempotent-Replayed: true`.",
)


def idempotency_key_parameter(description: str) -> OpenApiParameter:
    """The `Idempotency-Key` header, for the operations that start executions."""
    return OpenApiParameter(
        idempotency.HEADER,
        {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH,
         "pattern": "^[ -~]+$"},
        OpenApiParameter.HEADER,
        description="Any string of up to 255 printable ASCII characters (a UUID, say). "
        + description,
    )


_IDEMPOTENCY_KEY = idempotency_key_parameter(
    "The same key from the same user within AUTOMATION_IDEMPOTENCY_SECONDS (a day) starts "
    "nothing new: the answer is the first execution (200); with a different request body, 422."
)


class ExecutionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Executions, newest first. Reading needs `view_execution`; starting needs `try`
    (development) or `run` (productive); cancelling `change_execution` or the start
    permission of the execution's mode."""

    pagination_class = Page  # ?limit at most 1000
    queryset = Execution.objects.select_related("flow")
    serializer_class = ExecutionSerializer
    permission_classes = [permissions.ModelPermissions]
    lookup_value_regex = "[0-9]+"
    filterset_class = ExecutionFilter
    ordering_fields = ["id", "created_at", "started_at", "ended_at", "status", "name"]
    ordering = ["-id"]

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "create":
            return [permissions.MayStartExecutions()]
        if self.action in ("cancel", "pause", "resume"):
            # Which permission depends on the execution's mode: checked in the action.
            return [IsAuthenticated()]
        return super().get_permissions()

    @extend_schema(
        request=ExecutionStartSerializer,
        parameters=[_IDEMPOTENCY_KEY],
        responses={
            200: _REPLAYED, 201: _STARTED, 400: _ERROR, 403: _ERROR, 404: _ERROR, 422: _ERROR,
        },
        description="Start an execution through the one way in (`start_execution`). With "
        "`wait`, answer when it ended or the wait ran out; either way 201 with its JSON. "
        "An execution that is stored but whose message the broker could not take is "
        "answered 201 at once, PENDING, with a `warning`: the reconciler sends it. With an "
        "`Idempotency-Key` that this user sent before (within AUTOMATION_IDEMPOTENCY_SECONDS), "
        "nothing is started: 200 with the first execution and `Idempotent-Replayed: true`, "
        "or 422 if that key came with a different request.",
    )
    def create(self, request: Request) -> Response:
        key = idempotency.key_from(request.headers)  # a bad one is refused before any work
        payload = ExecutionStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if not permissions.may_start(request.user, data["mode"]):
            raise PermissionDenied(
                f"You may not start {data['mode']} executions "
                f"(needs the {permissions.start_permission(data['mode'])} permission)."
            )
        try:
            started = idempotency.start_once(
                f"user:{request.user.pk}", key, idempotency.request_digest(request.data),
                lambda: engine.start_execution(
                    type=data["type"],
                    flow=data.get("flow"),
                    script=data.get("script", ""),
                    connection=data.get("connection"),
                    connector_type=data.get("connector_type"),
                    input_value=data["input_value"],
                    mode=data["mode"],
                    name=data.get("name"),
                    priority=data["priority"],
                    user=request.user,
                    trigger=Execution.Trigger.API,
                ),
            )
        except engine.StartError as exc:
            answer = status.HTTP_404_NOT_FOUND if exc.not_found else status.HTTP_400_BAD_REQUEST
            return Response({exc.field: [exc.message]}, status=answer)
        execution = started.execution
        # A replay answers as the first request did, from the row as it is now (and waits
        # the same way: the same body has the same `wait`).
        warning = engine.send_warning(execution)  # accepted all the same: never wait on it
        wait = data.get("wait") if not warning else None
        read = None
        if wait:  # on a queue nobody serves, said within seconds, not after the whole wait
            read, warning = engine.wait_for_started(execution, wait)
        if read is not None:  # the row as the wait read it; its flow (for the name) as start read it
            read.flow = execution.flow
            execution = read
        elif started.replayed:  # the first request's execution, as it is now
            execution = self.get_queryset().get(pk=execution.pk)
        # Else the row as it was accepted: reading it again would cost the answer a query.
        url = request.build_absolute_uri(f"{request.path.rstrip('/')}/{execution.pk}/")
        body = ExecutionSerializer(execution).data
        if warning and not execution.is_ended:
            body["warning"] = warning
        headers = {"Location": url}
        if started.replayed:
            headers[idempotency.REPLAYED_HEADER] = "true"
        code = status.HTTP_200_OK if started.replayed else status.HTTP_201_CREATED
        return Response(body, status=code, headers=headers)

    @extend_schema(
        parameters=[OpenApiParameter(
            "after", int, description="Only entries with an id above this (for tailing)."
        )],
        responses={200: ExecutionLogSerializer(many=True), 400: _ERROR, 404: _ERROR},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def logs(self, request: Request, pk: str | None = None) -> Response:
        """The execution's log, oldest first; `?after=<id>` gives the entries after that one."""
        execution = self.get_object()
        refuse_repeated(request, "after")
        query = LogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        entries = ExecutionLog.objects.filter(execution=execution).order_by("id")
        if query.validated_data.get("after") is not None:
            entries = entries.filter(id__gt=query.validated_data["after"])
        page = self.paginate_queryset(entries)
        if page is not None:
            return self.get_paginated_response(ExecutionLogSerializer(page, many=True).data)
        return Response(ExecutionLogSerializer(entries, many=True).data)

    @extend_schema(responses={200: ExecutionSerializer(many=True), 404: _ERROR})
    @action(detail=True, methods=["get"], filter_backends=[])
    def children(self, request: Request, pk: str | None = None) -> Response:
        """The execution's direct children, in the order they were started."""
        execution = self.get_object()
        children = self.get_queryset().filter(parent=execution).order_by("id")
        page = self.paginate_queryset(children)
        if page is not None:
            return self.get_paginated_response(ExecutionSerializer(page, many=True).data)
        return Response(ExecutionSerializer(children, many=True).data)

    @extend_schema(
        request=None,
        responses={
            200: ExecutionSerializer,
            202: OpenApiResponse(
                ExecutionSerializer,
                description="Asked to stop, its code still runs: it ends ENDED_CANCELLED once "
                "stopped (`stop_requested_at` says since when).",
            ),
            403: _ERROR, 404: _ERROR, 409: _ERROR,
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel the execution and all its descendants: they end ENDED_CANCELLED once their
        code no longer runs. The answer waits for that, bounded (AUTOMATION_CANCEL_GRACE_SECONDS,
        after which a flow that ignores its cancel is killed, and 2 s more): 200 when it has
        ended, else 202 while it is still stopping."""
        execution = self.get_object()
        if not permissions.may_cancel(request.user, execution):
            raise PermissionDenied(
                f"You may not cancel {execution.mode} executions (needs "
                f"{permissions.CANCEL} or {permissions.start_permission(execution.mode)})."
            )
        if execution.is_ended:
            return Response(
                {"detail": f"execution {execution.pk} already ended ({execution.status})"},
                status=status.HTTP_409_CONFLICT,
            )
        stopped = engine.wait_stopped([execution.pk, *engine.cancel_execution(execution)])
        execution = self.get_queryset().get(pk=execution.pk)
        return Response(
            ExecutionSerializer(execution).data,
            status=status.HTTP_200_OK if stopped and execution.is_ended else status.HTTP_202_ACCEPTED,
        )

    def _changeable(self, request: Request, verb: str) -> Execution:
        """The execution, if the user may cancel it (who may cancel may pause and resume)."""
        execution = self.get_object()
        if not permissions.may_cancel(request.user, execution):
            raise PermissionDenied(
                f"You may not {verb} {execution.mode} executions (needs "
                f"{permissions.CANCEL} or {permissions.start_permission(execution.mode)})."
            )
        return execution

    @extend_schema(
        request=None,
        responses={200: ExecutionSerializer, 403: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        """Pause a RUNNING or WAITING execution: it is PAUSED and holds at its next flow_api
        call (a wait it is in goes on) until `resume/`. Cancelling still works."""
        execution = self._changeable(request, "pause")
        refused = engine.pause_execution(execution)
        if refused is not None:
            return Response({"status": [refused]}, status=status.HTTP_409_CONFLICT)
        return Response(ExecutionSerializer(self.get_queryset().get(pk=execution.pk)).data)

    @extend_schema(
        request=None,
        responses={200: ExecutionSerializer, 403: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Resume a PAUSED execution: it goes on RUNNING."""
        execution = self._changeable(request, "resume")
        if not engine.resume_execution(execution):
            return Response(
                {"status": [f"execution {execution.pk} is {execution.status}, not PAUSED"]},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(ExecutionSerializer(self.get_queryset().get(pk=execution.pk)).data)
