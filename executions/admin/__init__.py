"""The admin: one module per area, all registered on import (Django's admin autodiscover).

- `executions`: flows (Run/Try, revisions, helpers), executions (detail, live, cancel,
  rerun, promote) and settings;
- `views`: the pages and actions behind them, and the dashboard;
- `messages`, `schedules`, `webhooks`: the feature rooms' pages.

django-celery-beat's own models are not shown: the engine's Schedules own those rows
(executions.schedules.beat writes them), and editing them beside the engine only confuses.
"""

from __future__ import annotations

from django.contrib import admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from . import executions, messages, schedules, views, webhooks

__all__ = ["executions", "messages", "schedules", "views", "webhooks"]

for _model in (ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
