"""Schedules in the admin: list, enable and disable, and each one's next five fire times.

Message forms have their own admin module (admin_messages).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from .. import schedules
from ..models import Schedule


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["name", "flow", "enabled", "cron", "interval_seconds", "at", "timezone",
                    "overlap", "last_fired_at", "next_fire_at"]
    list_filter = ["enabled", "mode", "overlap"]
    search_fields = ["name", "flow__name"]
    readonly_fields = ["last_fired_at", "next_fire_at", "next_five", "periodic_task"]
    actions = ["enable", "disable"]

    @admin.action(description="Enable selected schedules")
    def enable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        schedules.set_enabled(queryset, True)

    @admin.action(description="Disable selected schedules")
    def disable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        schedules.set_enabled(queryset, False)

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

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        queryset.delete()  # the schedule queryset removes the beat rows too

