"""Fire times: cron in the schedule's time zone across DST, intervals without drift,
and the beat entry that hands beat the exact fire time (driven with a controlled clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.models import PeriodicTask

from executions import schedules
from executions.models import Flow, Schedule
from executions.schedules import ScheduleEntry, fire_times, latest_fire_at_or_before

VIENNA = ZoneInfo("Europe/Vienna")


def _local(times: list[datetime]) -> list[str]:
    return [t.astimezone(VIENNA).strftime("%m-%d %H:%M %Z") for t in times]


def test_a_0230_daily_job_in_vienna_runs_once_on_the_spring_forward_day():
    daily = Schedule(name="d", cron="30 2 * * *", timezone="Europe/Vienna")
    times = fire_times(daily, datetime(2025, 3, 29, 12, tzinfo=UTC), 3)
    # 02:30 does not exist on 30 March; it runs right after the change, once.
    assert _local(times) == ["03-30 03:30 CEST", "03-31 02:30 CEST", "04-01 02:30 CEST"]


def test_a_0230_daily_job_in_vienna_runs_once_on_the_fall_back_day():
    daily = Schedule(name="d", cron="30 2 * * *", timezone="Europe/Vienna")
    times = fire_times(daily, datetime(2025, 10, 25, 12, tzinfo=UTC), 3)
    # 02:30 happens twice on 26 October; it runs at the first one only.
    assert _local(times) == ["10-26 02:30 CEST", "10-27 02:30 CET", "10-28 02:30 CET"]
    assert times[1] - times[0] == timedelta(hours=25)


def test_the_latest_fire_time_inside_the_repeated_hour_is_the_first_0230():
    daily = Schedule(name="d", cron="30 2 * * *", timezone="Europe/Vienna")
    second_0230 = datetime(2025, 10, 26, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert latest_fire_at_or_before(daily, second_0230) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)


def test_interval_fire_times_count_from_start_at_and_do_not_drift():
    start = datetime(2030, 1, 1, 0, 0, 0, tzinfo=UTC)
    every = Schedule(name="i", interval_seconds=90, start_at=start)
    late_wakeup = start + timedelta(days=3, seconds=91.7)  # beat woke 1.7 s late, many times over
    nxt = schedules.next_fire_after(every, late_wakeup)
    assert nxt is not None
    assert (nxt - start).total_seconds() % 90 == 0
    assert latest_fire_at_or_before(every, late_wakeup) == start + timedelta(days=3, seconds=90)


def test_end_at_stops_fire_times_and_start_at_delays_them():
    start = datetime(2030, 1, 1, tzinfo=UTC)
    bounded = Schedule(
        name="b", cron="0 * * * *", timezone="UTC", start_at=start, end_at=start + timedelta(hours=2)
    )
    assert fire_times(bounded, start - timedelta(days=1), 10) == [
        start, start + timedelta(hours=1), start + timedelta(hours=2)
    ]


@pytest.mark.django_db
def test_the_beat_entry_is_due_exactly_at_each_interval_fire_time_without_drift(monkeypatch):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    flow = Flow.objects.create(name="f", script="def handler(system, this):\n    pass\n")
    schedule = Schedule.objects.create(name="every-10", flow=flow, interval_seconds=10, start_at=start)
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    task.last_run_at = start - timedelta(seconds=1)
    clock = {"now": start + timedelta(seconds=0.4)}
    monkeypatch.setattr(schedules.timezone, "now", lambda: clock["now"])  # beat's clock only

    entry = ScheduleEntry(task)
    fired = []
    for _ in range(50):
        due, _wait = entry.is_due()
        assert due, clock["now"]
        fired.append(datetime.fromisoformat(entry.kwargs["scheduled_for"]))
        entry = next(entry)
        clock["now"] = fired[-1] + timedelta(seconds=10.4)  # beat always wakes 0.4 s late
    assert fired == [start + timedelta(seconds=10 * k) for k in range(50)]


@pytest.mark.django_db
def test_the_beat_entry_is_not_due_before_the_fire_time_and_says_how_long_to_wait(monkeypatch):
    flow = Flow.objects.create(name="f", script="def handler(system, this):\n    pass\n")
    schedule = Schedule.objects.create(name="cron", flow=flow, cron="30 2 * * *", timezone="Europe/Vienna")
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    task.last_run_at = datetime(2025, 3, 29, 12, tzinfo=UTC)
    monkeypatch.setattr(schedules.timezone, "now", lambda: datetime(2025, 3, 30, 1, 0, tzinfo=UTC))
    due, wait = ScheduleEntry(task).is_due()
    assert (due, wait) == (False, 1800.0)  # 03:30 CEST is 01:30 UTC
