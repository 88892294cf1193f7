"""The admin: one module per area, all registered on import (Django's admin autodiscover).

- `executions`: flows (Run/Try, revisions, helpers), executions (detail, live, cancel,
  rerun, promote) and settings;
- `files`: files flows share (upload);
- `views`: the pages and actions behind them, and the dashboard;
- `messages`, `schedules`, `webhooks`: the feature rooms' pages.

django-celery-beat's own models are not shown: the engine's Schedules own those rows
(executions.schedules.beat writes them), and editing them beside the engine only confuses.
Knox's token table stays out of the sidebar too (tokens are made with create_api_token);
superusers reach it from the dashboard's "Advanced" card.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from knox.admin import AuthTokenAdmin
from knox.models import AuthToken

from . import executions, files, messages, schedules, views, webhooks

__all__ = ["executions", "files", "messages", "schedules", "views", "webhooks"]

for _model in (ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


class HiddenAuthTokenAdmin(AuthTokenAdmin):
    """Knox's admin, left out of the sidebar and the app list (its URLs still work; its
    app then has no index page, so its crumbs lead to the dashboard instead)."""

    change_list_template = "admin/executions/advanced/change_list.html"
    change_form_template = "admin/executions/advanced/change_form.html"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False


if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)
admin.site.register(AuthToken, HiddenAuthTokenAdmin)
