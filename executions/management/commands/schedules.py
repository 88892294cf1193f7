"""`python manage.py schedules`: the schedules with their next fire times."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from executions.models import Schedule
from executions.schedules import fire_times


class Command(BaseCommand):
    help = "List schedules with their next fire times (in each schedule's time zone)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1, help="Fire times to show per schedule.")

    def handle(self, *args: Any, **options: Any) -> None:
        from zoneinfo import ZoneInfo

        now = timezone.now()
        for schedule in Schedule.objects.select_related("flow"):
            spec = schedule.cron or (
                f"every {schedule.interval_seconds} s" if schedule.interval_seconds
                else f"at {schedule.at.isoformat() if schedule.at else '-'}"
            )
            tz = ZoneInfo(schedule.timezone)
            times = (
                fire_times(schedule, max(filter(None, [now, schedule.last_fired_at])), options["count"])
                if schedule.enabled and not (schedule.at and schedule.last_fired_at) else []
            )
            shown = ", ".join(t.astimezone(tz).isoformat() for t in times) or "-"
            state = "enabled" if schedule.enabled else "disabled"
            flow = schedule.flow.name if schedule.flow else "(no flow)"
            self.stdout.write(f"{schedule.name}\t{flow}\t{spec}\t{schedule.timezone}\t{state}\tnext: {shown}")
