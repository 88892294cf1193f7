"""Fire times: computed here, not by celery's schedule classes.

- cron runs in the schedule's time zone on wall-clock time; a time that does not exist on
  the spring-forward day (02:30 in Europe/Vienna) fires at the same offset after the
  change (03:30 summer time), a time that happens twice in autumn fires once, the first
  time;
- intervals count from `start_at` (or from creation): fire time k is `first + k * interval`,
  whenever beat happens to wake, so they do not drift;
- `at` fires once, after which the schedule disables itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from django.conf import settings
from django.utils import timezone

from ..models import Schedule


class ScheduleError(Exception):
    """A firing cannot start its flow; the message says why."""


def _misfire_grace() -> timedelta:
    """How late beat may fire a fire time and still have it count (then it is skipped)."""
    return timedelta(seconds=float(settings.AUTOMATION.get("SCHEDULE_MISFIRE_SECONDS", 300)))


def _to_utc(naive_local: datetime, tz: ZoneInfo) -> datetime:
    # fold=0: an ambiguous wall time is its first occurrence; a wall time inside the
    # spring-forward gap is read with the offset before the change, i.e. it lands after it.
    return naive_local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _cron_next(expression: str, tz: ZoneInfo, after: datetime) -> datetime:
    after = after.astimezone(UTC)
    # Iterate wall-clock times: each wall time once, so DST days neither skip nor repeat.
    start = after.astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)
    it = croniter(expression, start)
    for _ in range(100_000):
        candidate = _to_utc(it.get_next(datetime), tz)
        if candidate > after:
            return candidate
    raise ScheduleError(f"cron {expression!r} has no fire time after {after.isoformat()}")


def _cron_prev(expression: str, tz: ZoneInfo, moment: datetime) -> datetime | None:
    moment = moment.astimezone(UTC)
    start = moment.astimezone(tz).replace(tzinfo=None) + timedelta(hours=3)
    it = croniter(expression, start)
    for _ in range(100_000):
        candidate = _to_utc(it.get_prev(datetime), tz)
        if candidate <= moment:
            return candidate
    return None


def _first_interval_time(schedule: Schedule) -> datetime:
    assert schedule.interval_seconds
    if schedule.start_at is not None:
        return schedule.start_at
    return schedule.created_at + timedelta(seconds=schedule.interval_seconds)


def next_fire_after(schedule: Schedule, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`, within start_at/end_at; None if none."""
    if schedule.start_at is not None and after < schedule.start_at:
        after = schedule.start_at - timedelta(microseconds=1)
    found: datetime | None
    if schedule.cron:
        found = _cron_next(schedule.cron, ZoneInfo(schedule.timezone), after)
    elif schedule.interval_seconds:
        first = _first_interval_time(schedule)
        if after < first:
            found = first
        else:
            step = schedule.interval_seconds
            k = int((after - first).total_seconds() // step) + 1
            found = first + timedelta(seconds=k * step)
    else:
        found = schedule.at if schedule.at is not None and schedule.at > after else None
    if found is not None and schedule.end_at is not None and found > schedule.end_at:
        return None
    return found


def latest_fire_at_or_before(schedule: Schedule, moment: datetime) -> datetime | None:
    """The last fire time at or before `moment`, within start_at/end_at; None if none."""
    if schedule.end_at is not None and moment > schedule.end_at:
        moment = schedule.end_at
    found: datetime | None
    if schedule.cron:
        found = _cron_prev(schedule.cron, ZoneInfo(schedule.timezone), moment)
    elif schedule.interval_seconds:
        first = _first_interval_time(schedule)
        if moment < first:
            return None
        k = int((moment - first).total_seconds() // schedule.interval_seconds)
        found = first + timedelta(seconds=k * schedule.interval_seconds)
    else:
        found = schedule.at if schedule.at is not None and schedule.at <= moment else None
    if found is not None and schedule.start_at is not None and found < schedule.start_at:
        return None
    return found


def fire_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `after` (fewer if the schedule ends)."""
    times: list[datetime] = []
    moment = after
    while len(times) < count:
        found = next_fire_after(schedule, moment)
        if found is None:
            break
        times.append(found)
        moment = found
    return times


def fire_reference(schedule: Schedule) -> datetime:
    """Where the coming fire times are counted from: now, or the last firing if later."""
    return max(filter(None, [timezone.now(), schedule.last_fired_at]))


def upcoming(schedule: Schedule, count: int = 1) -> list[datetime]:
    """The next `count` fire times from now; none for a disabled schedule or a one-off
    that fired. The one helper the beat rows, the admin and the `schedules` command use."""
    if not schedule.enabled:
        return []
    if schedule.at is not None and schedule.last_fired_at is not None:
        return []  # a one-off that fired
    return fire_times(schedule, fire_reference(schedule), count)


def next_fire_at(schedule: Schedule) -> datetime | None:
    """The next fire time from now (what `Schedule.next_fire_at` holds), or None."""
    found = upcoming(schedule, 1)
    return found[0] if found else None
