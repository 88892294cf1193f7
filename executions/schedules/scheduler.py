"""Beat's scheduler: `BeatScheduler` (settings.CELERY_BEAT_SCHEDULER) asks the fire-time
functions when each schedule is due and hands the exact fire time to the task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import schedules as celery_schedules
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from ..models import Schedule
from .beat import FIRE_TASK
from .firing import _parse_moment
from .times import _misfire_grace, latest_fire_at_or_before, next_fire_after


class ScheduleEntry(ModelEntry):
    """A beat entry that asks our fire-time functions when a schedule is due, and hands
    the exact fire time to the task. Other periodic tasks behave as in django-celery-beat."""

    kwargs: dict[str, Any]

    def __init__(self, model: PeriodicTask, app: Any = None) -> None:
        super().__init__(model, app=app)
        self.spec: Schedule | None = None
        self.due_at: datetime | None = None
        if model.task == FIRE_TASK:
            self.spec = Schedule.objects.filter(pk=self.kwargs.get("schedule_id") or 0).first()

    def is_due(self) -> Any:
        if self.spec is None:
            return super().is_due()
        if not self.model.enabled:
            return celery_schedules.schedstate(False, 5.0)
        now = timezone.now()
        reference = _parse_moment(self.last_run_at)
        if self.spec.last_fired_at and self.spec.last_fired_at > reference:
            reference = self.spec.last_fired_at
        due = next_fire_after(self.spec, reference)
        if due is not None and now - due > _misfire_grace():
            # Beat was away: fire the latest missed time if it is recent, never a backlog.
            due = latest_fire_at_or_before(self.spec, now)
            if due is not None and now - due > _misfire_grace():
                due = next_fire_after(self.spec, now)
        if due is None:
            return celery_schedules.schedstate(False, 300.0)
        if due > now:
            return celery_schedules.schedstate(False, (due - now).total_seconds())
        self.due_at = due
        self.kwargs = {**self.kwargs, "scheduled_for": due.isoformat()}
        following = next_fire_after(self.spec, due)
        wait = (following - now).total_seconds() if following else 300.0
        return celery_schedules.schedstate(True, max(wait, 0.0))

    def __next__(self) -> ScheduleEntry:
        if self.spec is None:
            return super().__next__()  # type: ignore[no-any-return]
        # The fire time, not "now": the next one is computed from the schedule, no drift.
        self.model.last_run_at = self.due_at or timezone.now()
        self.model.total_run_count += 1
        self.model.no_changes = True
        return self.__class__(self.model, app=self.app)


class BeatScheduler(DatabaseScheduler):
    """django-celery-beat's DatabaseScheduler with exact fire times for our schedules."""

    Entry = ScheduleEntry
