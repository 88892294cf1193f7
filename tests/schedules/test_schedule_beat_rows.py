"""Each schedule owns one django-celery-beat PeriodicTask, kept in step; and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from executions.models import Flow, Schedule

pytestmark = pytest.mark.django_db

SCRIPT = "def handler(system, this):\n    pass\n"


@pytest.fixture
def flow() -> Flow:
    return Flow.objects.create(name="job", script=SCRIPT)


def _task(schedule: Schedule) -> PeriodicTask:
    schedule.refresh_from_db()
    return PeriodicTask.objects.get(pk=schedule.periodic_task_id)


def test_saving_a_schedule_writes_its_one_periodic_task(flow):
    schedule = Schedule.objects.create(name="hourly", flow=flow, cron="0 * * * *", timezone="Europe/Vienna")
    task = _task(schedule)
    assert task.task == "executions.fire_schedule"
    assert task.kwargs == f'{{"schedule_id": {schedule.pk}}}'
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("0", "*", "Europe/Vienna")
    assert task.enabled
    assert PeriodicTask.objects.filter(task="executions.fire_schedule").count() == 1


def test_editing_disabling_and_deleting_keep_the_periodic_task_in_step(flow):
    schedule = Schedule.objects.create(name="s", flow=flow, cron="0 * * * *")
    before = PeriodicTasks.last_change()
    schedule.cron, schedule.interval_seconds = "", 30
    schedule.save()
    task = _task(schedule)
    assert task.crontab is None and (task.interval.every, task.interval.period) == (30, "seconds")
    assert not CrontabSchedule.objects.exists()  # its old crontab row was used by no one else
    assert PeriodicTasks.last_change() > before  # beat reloads without a restart

    schedule.enabled = False
    schedule.save()
    assert _task(schedule).enabled is False

    task_id = schedule.periodic_task_id
    schedule.delete()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    assert not IntervalSchedule.objects.filter(every=30).exists()


def test_bulk_updates_and_deletes_keep_the_periodic_tasks_in_step(flow):
    for n in range(3):
        Schedule.objects.create(name=f"s{n}", flow=flow, interval_seconds=60)
    before = PeriodicTasks.last_change()

    Schedule.objects.filter(name__in=["s0", "s1"]).update(enabled=False)

    states = dict(PeriodicTask.objects.filter(task="executions.fire_schedule")
                  .values_list("automation_schedule__name", "enabled"))
    assert states == {"s0": False, "s1": False, "s2": True}
    assert PeriodicTasks.last_change() > before

    Schedule.objects.filter(name__in=["s0", "s2"]).delete()
    assert list(PeriodicTask.objects.filter(task="executions.fire_schedule")
                .values_list("automation_schedule__name", flat=True)) == ["s1"]
    assert IntervalSchedule.objects.filter(every=60).count() == 1  # s1 still uses it


def test_a_crontab_row_another_task_uses_is_never_deleted(flow):
    shared = CrontabSchedule.objects.create(minute="0", hour="4", timezone="UTC")
    other = PeriodicTask.objects.create(name="someone else's", task="x.y", crontab=shared)
    schedule = Schedule.objects.create(name="s", flow=flow, cron="0 4 * * *", timezone="UTC")
    assert _task(schedule).crontab_id == shared.pk

    schedule.delete()

    assert CrontabSchedule.objects.filter(pk=shared.pk).exists()
    assert PeriodicTask.objects.filter(pk=other.pk).exists()


def test_the_api_creates_a_schedule_and_shows_its_next_fire_time(api, flow):
    answer = api.post("/api/schedules/", {
        "name": "nightly", "flow": "job", "cron": "30 2 * * *", "timezone": "Europe/Vienna",
        "input_value": {"a": 1}, "overlap": "skip",
    }, format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    # `warning` too when no worker serves the flow's queue (none runs for this test).
    assert set(body) - {"warning"} == {
        "name", "flow", "input_value", "mode", "enabled", "cron", "interval_seconds", "at",
        "timezone", "start_at", "end_at", "overlap", "owner", "last_fired_at", "next_fire_at",
    }
    assert body["next_fire_at"] and body["last_fired_at"] is None
    assert api.get("/api/schedules/nightly/").json()["cron"] == "30 2 * * *"
    assert api.patch("/api/schedules/nightly/", {"enabled": False}, format="json").status_code == 200
    assert _task(Schedule.objects.get(name="nightly")).enabled is False
    assert api.delete("/api/schedules/nightly/").status_code == 204
    assert not PeriodicTask.objects.filter(task="executions.fire_schedule").exists()


@pytest.mark.parametrize(("data", "field", "says"), [
    ({"cron": "61 * * * *"}, "cron", "not a valid cron expression"),
    ({"cron": "* * *"}, "cron", "5 fields"),
    ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "timezone", "IANA"),
    ({}, "cron", "give one of"),
    ({"cron": "0 3 * * *", "interval_seconds": 5}, "interval_seconds", "only one"),
    ({"interval_seconds": 0}, "interval_seconds", "greater than or equal to 1"),
    ({"at": "2001-01-01T00:00:00Z"}, "at", "future"),
    ({"cron": "0 3 * * *", "flow": "nope"}, "flow", "does not exist"),
])
def test_the_api_refuses_bad_schedules_naming_the_field(api, flow, data, field, says):
    answer = api.post("/api/schedules/", {"name": "bad", "flow": "job", **data}, format="json")
    assert answer.status_code == 400
    assert says in " ".join(answer.json()[field])
    assert not Schedule.objects.exists()


def test_the_schedules_command_lists_next_fire_times(flow, capsys):
    from django.core.management import call_command

    Schedule.objects.create(name="every-5m", flow=flow, interval_seconds=300,
                            start_at=timezone.now() - timedelta(seconds=1))
    call_command("schedules", "--count", "2")
    line = capsys.readouterr().out.strip()
    assert line.startswith("every-5m\tjob\tevery 300 s\t")
    assert line.count("T") >= 2 and "next: " in line
