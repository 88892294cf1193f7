"""Schedules: fire times, the beat rows that drive them, and what one firing does.

- `times`: fire times (cron on wall-clock time in the schedule's zone, drift-free intervals,
  one-off `at`), and the one next-fire-time helper (`upcoming`);
- `beat`: the only writer of django-celery-beat's rows, kept in step with each Schedule;
- `firing`: one SCHEDULE execution per (schedule, fire time), and what it runs;
- `scheduler`: `BeatScheduler`, the beat scheduler named in settings.CELERY_BEAT_SCHEDULER
  (importable here as `executions.schedules:BeatScheduler`);
- `saving`: create or update a schedule from plain data, validated like the API.
"""

from __future__ import annotations

from django.utils import timezone

from .beat import FIRE_TASK, delete_periodic_tasks, set_enabled, sync, sync_many
from .firing import fire, orphaned, run
from .saving import ScheduleSerializer, save_schedule
from .scheduler import BeatScheduler, ScheduleEntry
from .times import (
    ScheduleError,
    fire_reference,
    fire_times,
    latest_fire_at_or_before,
    next_fire_after,
    next_fire_at,
    upcoming,
)

__all__ = [
    "FIRE_TASK",
    "BeatScheduler",
    "ScheduleEntry",
    "ScheduleError",
    "ScheduleSerializer",
    "delete_periodic_tasks",
    "fire",
    "fire_reference",
    "fire_times",
    "latest_fire_at_or_before",
    "next_fire_after",
    "next_fire_at",
    "orphaned",
    "run",
    "save_schedule",
    "set_enabled",
    "sync",
    "sync_many",
    "timezone",  # django.utils.timezone: the clock the scheduler reads (tests set it)
    "upcoming",
]
