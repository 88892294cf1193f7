"""`python manage.py schedules`: the schedules with their next fire times."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandParser

from executions.models import Schedule
from executions.schedules import upcoming


class Command(BaseCommand):
    help = "List schedules with their next fire times (in each schedule's time zone)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1, help="Fire times to show per schedule.")

    def handle(self, *args: Any, **options: Any) -> None:
        for schedule in Schedule.objects.select_related("flow"):
            spec = schedule.cron or (
                f"every {schedule.interval_seconds} s" if schedule.interval_seconds
                else f"at {schedule.at.isoformat() if schedule.at else '-'}"
            )
            tz = ZoneInfo(schedule.timezone)
            times = upcoming(schedule, options["count"])
            shown = ", ".join(t.astimezone(tz).isoformat() for t in times) or "-"
            state = "enabled" if schedule.enabled else "disabled"
            flow = schedule.flow.name if schedule.flow else "(no flow)"
            self.stdout.write(f"{schedule.name}\t{flow}\t{spec}\t{schedule.timezone}\t{state}\tnext: {shown}")
