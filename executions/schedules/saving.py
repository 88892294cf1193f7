"""Create or update a schedule from plain data, validated like the API (one serializer).

The REST API (`/api/schedules/`) and flows, through `system.save_schedule` (the Recurring
and Daily helper flows), both save through `ScheduleSerializer`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from ..models import Flow, Schedule, validate_cron, validate_timezone


class ScheduleSerializer(serializers.ModelSerializer):
    """A schedule; exactly one of `cron`, `interval_seconds` or `at` is given."""

    flow = serializers.SlugRelatedField(slug_field="name", queryset=Flow.objects.all())
    cron = serializers.CharField(required=False, allow_blank=True, default="")
    timezone = serializers.CharField(required=False)
    interval_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    owner: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True,
        help_text="On whose behalf its firings run, with their current rights (who created "
        "it); null: they run without a user.",
    )

    class Meta:
        model = Schedule
        fields = [
            "name", "flow", "input_value", "mode", "enabled", "cron", "interval_seconds", "at",
            "timezone", "start_at", "end_at", "overlap", "owner", "last_fired_at",
            "next_fire_at",
        ]
        read_only_fields = ["last_fired_at", "next_fire_at"]

    def validate_cron(self, value: str) -> str:
        value = " ".join(value.split())
        if value:
            try:
                validate_cron(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(exc.messages) from None
        return value

    def validate_timezone(self, value: str) -> str:
        try:
            validate_timezone(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value

    def validate_input_value(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("input_value must be a JSON object")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def current(field: str) -> Any:
            if field in attrs:
                return attrs[field]
            return getattr(self.instance, field) if self.instance is not None else None

        given = [f for f in ("cron", "interval_seconds", "at") if current(f) not in (None, "")]
        if not given:
            raise serializers.ValidationError(
                {"cron": "give one of cron, interval_seconds or at"}
            )
        if len(given) > 1:
            raise serializers.ValidationError(
                {given[1]: f"give only one of cron, interval_seconds or at (got {', '.join(given)})"}
            )
        at = attrs.get("at")
        if at is not None and at <= timezone.now() - timedelta(seconds=1):
            raise serializers.ValidationError({"at": "at must be in the future"})
        start_at, end_at = current("start_at"), current("end_at")
        if start_at and end_at and end_at <= start_at:
            raise serializers.ValidationError({"end_at": "end_at must be after start_at"})
        return attrs


def save_schedule(
    data: dict[str, Any], name: str | None = None, *, owner: Any = None
) -> dict[str, Any]:
    """Create (or, with `name`, update) a schedule from plain data, validated like the API;
    raises ValueError naming the field. Flows reach it as `system.save_schedule(...)`: a
    schedule a flow creates is owned by the flow's user (`owner`; None: no owner, it fires
    without a user)."""
    instance = Schedule.objects.filter(name=name).first() if name else None
    serializer = ScheduleSerializer(instance, data=data, partial=instance is not None)
    if not serializer.is_valid():
        field, errors = next(iter(serializer.errors.items()))
        raise ValueError(f"{field}: {' '.join(str(e) for e in errors)}")
    serializer.save(**({"owner": owner} if instance is None else {}))
    return dict(serializer.data)
