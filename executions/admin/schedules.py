"""Schedules in the admin: list, enable and disable, each one's next five fire times, its
firing history and a "Run now" button. A schedule whose owner may no longer start its mode
shows as orphaned, as webhooks do (its firings end in error saying why).

Message forms have their own admin module (admin_messages).
"""

from __future__ import annotations

from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from .. import permissions, schedules
from ..models import Execution, Schedule
from .executions import status_badge
from .views import (
    execution_url,
    format_duration,
    owner_state_text,
    warn_if_not_sent,
    warn_if_unserved,
)

# How many firings the schedule page lists, newest first.
HISTORY_ROWS = 15


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["name", "flow", "enabled", "cron", "interval_seconds", "at", "timezone",
                    "overlap", "owner", "owner_state", "last_fired_at", "next_fire_at"]
    list_select_related = ["flow", "owner"]
    list_filter = ["enabled", "mode", "overlap"]
    search_fields = ["name", "flow__name"]
    readonly_fields = ["owner", "owner_state", "last_fired_at", "next_fire_at", "next_five",
                       "firing_history", "periodic_task"]
    actions = ["enable", "disable"]
    change_form_template = "admin/executions/schedule/change_form.html"

    class Media:
        css = {"all": ("executions/admin.css",)}

    @admin.action(description="Enable selected schedules")
    def enable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        schedules.set_enabled(queryset, True)

    @admin.action(description="Disable selected schedules")
    def disable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        schedules.set_enabled(queryset, False)

    @admin.display(description="owner state")
    def owner_state(self, schedule: Schedule) -> str:
        """Firings run with the owner's current rights: say when they no longer can."""
        if schedule.owner_id is None:
            return "— (no owner: fires without a user)"
        return owner_state_text(schedules.orphaned(schedule))

    @admin.display(description="Next five fire times")
    def next_five(self, schedule: Schedule) -> str:
        """The coming fire times in the schedule's own time zone (computed, not stored)."""
        if schedule.pk is None:
            return "—"
        if not schedule.enabled:
            return "— (disabled)"
        after = schedules.fire_reference(schedule)
        if schedule.at is not None and schedule.last_fired_at is not None:
            return "— (a one-off that fired)"
        try:
            zone = ZoneInfo(schedule.timezone)
            times = schedules.fire_times(schedule, after, 5)
        except Exception as exc:  # a bad expression shows as text, not as a 500
            return f"cannot compute: {exc}"
        if not times:
            return "— (no more firings)"
        return format_html(
            '<ol class="fire-times">{}</ol>',
            format_html_join("", "<li>{}</li>", (
                (t.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z"),) for t in times
            )),
        )

    @admin.display(description="Firing history")
    def firing_history(self, schedule: Schedule) -> str:
        """The latest firings (SCHEDULE executions): when, how they ended, how long."""
        if schedule.pk is None:
            return "—"
        rows = list(
            Execution.objects.filter(schedule=schedule, type=Execution.Type.SCHEDULE)
            .only("id", "status", "scheduled_for", "created_at", "started_at", "ended_at")
            .order_by("-id")[:HISTORY_ROWS]
        )
        if not rows:
            return "— (not fired yet)"
        return format_html(
            '<table class="firing-history"><thead><tr><th>Execution</th><th>Fire time</th>'
            "<th>Status</th><th>Duration</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>', (
                (
                    execution_url(e), e.pk,
                    timezone.localtime(e.scheduled_for or e.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    status_badge(e.status), format_duration(e.duration) or "—",
                )
                for e in rows
            )),
        )

    def get_urls(self) -> list[URLPattern]:
        run_now = self.admin_site.admin_view(require_POST(partial(schedule_run_now_view, self)))
        return [
            path("<path:object_id>/run-now/", run_now, name="executions_schedule_run_now"),
            *super().get_urls(),
        ]

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        if not change:
            obj.owner = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        warn_if_unserved(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        queryset.delete()  # the schedule queryset removes the beat rows too



def schedule_run_now_view(model_admin: ScheduleAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST: fire the schedule now (one SCHEDULE execution, outside its timing) and show it."""
    schedule = get_object_or_404(Schedule, pk=object_id)
    if not model_admin.has_change_permission(request, schedule) or not permissions.may_start(
        request.user, schedule.mode
    ):
        raise PermissionDenied("Run now needs the change schedule permission and may start "
                               f"{schedule.mode} executions.")
    execution = schedules.fire(schedule.pk, manual=True)
    if execution is None:  # pragma: no cover - a manual firing always records one
        messages.error(request, f"{schedule.name} was not fired.")
        return HttpResponseRedirect(reverse("admin:executions_schedule_change", args=[schedule.pk]))
    warn_if_not_sent(request, execution)
    messages.success(request, f"Fired {schedule.name} now: execution {execution.pk}.")
    return HttpResponseRedirect(execution_url(execution))
