"""A simple admin for schedules and message forms (the full admin UI comes later)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from . import schedules
from .models import Message, Schedule


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["name", "flow", "enabled", "cron", "interval_seconds", "at", "timezone",
                    "overlap", "last_fired_at", "next_fire_at"]
    list_filter = ["enabled", "mode", "overlap"]
    search_fields = ["name", "flow__name"]
    readonly_fields = ["last_fired_at", "next_fire_at", "periodic_task"]
    actions = ["enable", "disable"]

    @admin.action(description="Enable selected schedules")
    def enable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        schedules.set_enabled(queryset, True)

    @admin.action(description="Disable selected schedules")
    def disable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        schedules.set_enabled(queryset, False)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        queryset.delete()  # the schedule queryset removes the beat rows too


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "status", "execution", "answered_by", "answered_at",
                    "created_at"]
    list_filter = ["status"]
    search_fields = ["subject", "text"]
    readonly_fields = ["answered_by", "answered_at", "created_at"]
