"""A schedule: what starts a flow at fire times."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from .execution import Execution
from .flow import Flow
from .validators import validate_cron, validate_timezone

# The beat rows of a schedule are written by executions.schedules, a layer above the models:
# the models announce their changes and executions.signals connects the schedules' receivers
# (sent inside the transaction of the change, so the beat rows change with the schedule).
schedule_saved = Signal()  # sender=Schedule, schedule=<the saved Schedule>
schedules_changed = Signal()  # sender=Schedule, ids=[pk, ...] after a bulk update
schedule_deleted = Signal()  # sender=Schedule, task_ids=[PeriodicTask pk, ...] now unused


def _server_timezone() -> str:
    return str(settings.TIME_ZONE)


def _now() -> Any:
    # Schedule has a field named `timezone`, which hides the module inside its class body.
    return timezone.now()


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    """Bulk changes keep the beat rows in step too (a plain update sends no signal)."""

    def update(self, **kwargs: Any) -> int:
        ids = list(self.values_list("pk", flat=True))
        count = super().update(**kwargs)
        if ids and not set(kwargs) <= {"last_fired_at", "next_fire_at", "periodic_task"}:
            schedules_changed.send(sender=Schedule, ids=ids)
        return count

    def delete(self) -> tuple[int, dict[str, int]]:
        task_ids = list(self.exclude(periodic_task=None).values_list("periodic_task", flat=True))
        result = super().delete()
        schedule_deleted.send(sender=Schedule, task_ids=task_ids)
        return result


class Schedule(models.Model):
    """Starts a flow at fire times: a cron expression, an interval, or one moment (`at`).

    Each schedule owns one django-celery-beat `PeriodicTask`, written only by
    `executions.schedules` (kept in step on save, enable, disable and delete). Each firing
    is a SCHEDULE execution; (schedule, fire time) is unique, so a firing happens once.
    A firing runs as its `owner` and ends in error when the owner may no longer start the
    schedule's mode (`executions.schedules.firing.orphaned`).
    """

    class Overlap(models.TextChoices):
        ALLOW = "allow"
        SKIP = "skip"
        CANCEL_PREVIOUS = "cancel_previous"

    name = models.CharField(max_length=200, unique=True, help_text="Unique name.")
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="schedules",
        help_text="The flow each firing starts (a deleted flow leaves it empty).",
    )
    input_value = models.JSONField(
        default=dict, blank=True, help_text="Inputs of the flow; `scheduled_at` is added."
    )
    mode = models.CharField(
        max_length=16, choices=Execution.Mode.choices, default=Execution.Mode.PRODUCTIVE
    )
    enabled = models.BooleanField(default=True)
    cron = models.CharField(
        max_length=200, blank=True, default="", validators=[validate_cron],
        help_text="Cron expression (minute hour day month weekday), in `timezone`.",
    )
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Fire every this many seconds, counted from start_at."
    )
    at = models.DateTimeField(null=True, blank=True, help_text="Fire once at this moment.")
    timezone = models.CharField(
        max_length=64, default=_server_timezone, validators=[validate_timezone],
        help_text="IANA time zone of the cron expression.",
    )
    start_at = models.DateTimeField(null=True, blank=True, help_text="No firing before this.")
    end_at = models.DateTimeField(null=True, blank=True, help_text="No firing after this.")
    overlap = models.CharField(
        max_length=16, choices=Overlap.choices, default=Overlap.ALLOW,
        help_text="What a firing does while the previous one still runs.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", editable=False,
        help_text="On whose behalf its firings run, with their current rights (who created it); "
        "empty: they run without a user.",
    )
    last_fired_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_fire_at = models.DateTimeField(null=True, blank=True, editable=False)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, editable=False,
        on_delete=models.SET_NULL, related_name="automation_schedule",
    )
    created_at = models.DateTimeField(default=_now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="schedule_one_kind",
                condition=(
                    (~Q(cron="") & Q(interval_seconds__isnull=True) & Q(at__isnull=True))
                    | (Q(cron="") & Q(interval_seconds__isnull=False) & Q(at__isnull=True))
                    | (Q(cron="") & Q(interval_seconds__isnull=True) & Q(at__isnull=False))
                ),
            ),
            models.CheckConstraint(
                name="schedule_interval_positive",
                condition=Q(interval_seconds__isnull=True) | Q(interval_seconds__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save and bring its beat row in step, in one transaction."""
        with transaction.atomic():
            super().save(*args, **kwargs)
            schedule_saved.send(sender=Schedule, schedule=self)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        with transaction.atomic():
            task_id = self.periodic_task_id
            result = super().delete(*args, **kwargs)
            schedule_deleted.send(sender=Schedule, task_ids=[task_id] if task_id else [])
        return result

    def clean(self) -> None:
        kinds = [bool(self.cron), self.interval_seconds is not None, self.at is not None]
        if sum(kinds) != 1:
            raise ValidationError(
                {"cron": "give exactly one of cron, interval_seconds or at"}
            )
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValidationError({"end_at": "end_at must be after start_at"})
