"""`/api/schedules/`: schedules by name, with validation that names the field, and run-now."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from executions import schedules
from executions.engine.dispatch import send_warning
from executions.engine.records import execution_json
from executions.models import Execution, Schedule
from executions.permissions import ModelPermissions
from executions.schedules.saving import ScheduleSerializer, save_schedule

from .pagination import Page
from .schema import FlowNameField, StrictStrings
from .unserved import WarnsWhenUnserved, note_warning, warning_field

__all__ = ["ScheduleSerializer", "ScheduleViewSet", "save_schedule"]


@extend_schema_serializer(component_name="Schedule")
class ScheduleAnswerSerializer(StrictStrings, ScheduleSerializer):
    """A schedule, and in the answer to a save the `warning` that no worker serves its queue."""

    flow = FlowNameField()
    warning = warning_field()

    class Meta(ScheduleSerializer.Meta):
        fields = [*ScheduleSerializer.Meta.fields, "warning"]


class ScheduleViewSet(WarnsWhenUnserved, viewsets.ModelViewSet):
    """Schedules that start flows; `POST /api/schedules/{name}/run-now/` fires one now."""

    pagination_class = Page  # ?limit at most 1000
    queryset = Schedule.objects.select_related("flow", "owner").order_by("name")
    serializer_class = ScheduleAnswerSerializer
    permission_classes = [ModelPermissions]  # run-now is a POST: it needs add_schedule
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    filterset_fields = ["enabled", "mode"]

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        # Its firings run as its creator, with the creator's rights when they fire.
        note_warning(serializer.save(owner=self.request.user))

    @action(detail=True, methods=["post"], url_path="run-now")
    def run_now(self, request: Request, name: str | None = None) -> Response:
        schedule = self.get_object()
        fired = schedules.fire(schedule.pk, manual=True)
        if fired is None:  # pragma: no cover - a manual firing always records one
            return Response({"detail": "not fired"}, status=status.HTTP_409_CONFLICT)
        body = execution_json(Execution.objects.select_related("flow").get(pk=fired.pk))
        warning = send_warning(fired)  # stored, but the broker did not take it: still 201
        if warning:
            body["warning"] = warning
        return Response(body, status=status.HTTP_201_CREATED)
