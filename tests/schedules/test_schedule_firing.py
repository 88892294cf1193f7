"""A schedule's firing starts its flow once per fire time, on a real worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from executions import engine
from executions.models import Execution, Schedule
from executions.tasks import fire_schedule

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

ECHO = """
def handler(system, this):
    return {'got': this.get('input_value')}
"""
SLEEPER = """
import time

def handler(system, this):
    time.sleep(30)
"""


def _ended(pk: int | None, timeout: float = 30) -> Execution:
    assert pk is not None, "nothing was fired"
    return engine.wait_for([pk], timeout=timeout)[0]


def _firings(schedule: Schedule) -> list[Execution]:
    return list(Execution.objects.filter(schedule=schedule).order_by("scheduled_for"))


def test_a_firing_starts_the_flow_as_its_child_with_the_inputs_and_scheduled_at(make_flow):
    schedule = Schedule.objects.create(
        name="nightly", flow=make_flow("echo", ECHO), cron="0 3 * * *", input_value={"who": "ops"}
    )
    fire_time = datetime(2031, 5, 1, 3, 0, tzinfo=UTC)

    pk = fire_schedule(schedule.pk, fire_time.isoformat())

    firing = _ended(pk)
    assert firing.type == "SCHEDULE"
    assert firing.status == "ENDED_SUCCESS", firing.message
    assert (firing.trigger, firing.trigger_ref) == ("schedule", "nightly")
    assert firing.scheduled_for == fire_time
    child = Execution.objects.get(parent=firing)
    assert child.status == "ENDED_SUCCESS"
    assert child.output_value["got"] == {"who": "ops", "scheduled_at": fire_time.isoformat()}
    assert firing.output_value["execution"] == child.pk
    schedule.refresh_from_db()
    assert schedule.last_fired_at == fire_time


def test_the_same_fire_time_fired_twice_starts_the_flow_once(make_flow):
    flow = make_flow("echo", ECHO)
    schedule = Schedule.objects.create(name="twice", flow=flow, interval_seconds=60)
    fire_time = (timezone.now() + timedelta(seconds=5)).isoformat()

    first = fire_schedule(schedule.pk, fire_time)
    second = fire_schedule(schedule.pk, fire_time)  # a second beat, or a redelivery

    assert first is not None and second is None
    _ended(first)
    assert len(_firings(schedule)) == 1
    assert Execution.objects.filter(flow=flow, type="FLOW").count() == 1


def test_a_schedule_whose_flow_is_disabled_records_a_failed_firing_that_says_so(make_flow):
    flow = make_flow("off", ECHO, enabled=False)
    schedule = Schedule.objects.create(name="to-off", flow=flow, interval_seconds=60)

    firing = _ended(fire_schedule(schedule.pk, timezone.now().isoformat()))

    assert firing.status == "ENDED_ERROR"
    assert "disabled" in firing.message and "'off'" in firing.message


def test_a_schedule_whose_flow_was_deleted_records_a_failed_firing_that_says_so(make_flow):
    flow = make_flow("gone", ECHO)
    schedule = Schedule.objects.create(name="to-gone", flow=flow, interval_seconds=60)
    flow.delete()

    firing = _ended(fire_schedule(schedule.pk, timezone.now().isoformat()))

    assert firing.status == "ENDED_ERROR"
    assert "flow was deleted" in firing.message


def test_a_disabled_schedule_does_not_fire(make_flow):
    schedule = Schedule.objects.create(
        name="resting", flow=make_flow("echo", ECHO), interval_seconds=60, enabled=False
    )
    assert fire_schedule(schedule.pk, timezone.now().isoformat()) is None
    assert _firings(schedule) == []


def test_overlap_skip_records_a_skipped_firing_while_the_last_one_still_runs(make_flow):
    schedule = Schedule.objects.create(
        name="skipper", flow=make_flow("sleeper", SLEEPER), interval_seconds=60, overlap="skip"
    )
    now = timezone.now()
    first = fire_schedule(schedule.pk, now.isoformat())
    wait_until(lambda: Execution.objects.filter(parent_id=first, status="RUNNING").exists(), 20)

    second = _ended(fire_schedule(schedule.pk, (now + timedelta(seconds=60)).isoformat()))

    assert second.status == "ENDED_SUCCESS"
    assert second.message == f"skipped: the firing in execution {first} still runs"
    assert second.output_value["skipped"] is True
    assert not Execution.objects.filter(parent=second).exists()
    engine.cancel_execution(first or 0)


def test_overlap_cancel_previous_cancels_the_running_firing_and_starts_anew(make_flow):
    schedule = Schedule.objects.create(
        name="canceller", flow=make_flow("sleeper", SLEEPER), interval_seconds=60,
        overlap="cancel_previous",
    )
    now = timezone.now()
    first = fire_schedule(schedule.pk, now.isoformat())
    wait_until(lambda: Execution.objects.filter(parent_id=first, status="RUNNING").exists(), 20)

    second = fire_schedule(schedule.pk, (now + timedelta(seconds=60)).isoformat())

    assert _ended(first, 10).status == "ENDED_CANCELLED"
    assert Execution.objects.get(parent_id=first).status == "ENDED_CANCELLED"
    wait_until(lambda: Execution.objects.filter(parent_id=second, status="RUNNING").exists(), 20)
    engine.cancel_execution(second or 0)


def test_a_one_off_schedule_fires_once_and_then_disables_itself(make_flow):
    at = timezone.now() + timedelta(minutes=5)
    schedule = Schedule.objects.create(name="once", flow=make_flow("echo", ECHO), at=at)
    task = schedule.periodic_task
    assert task is not None and task.one_off and task.clocked is not None

    pk = fire_schedule(schedule.pk, at.isoformat())

    assert _ended(pk).status == "ENDED_SUCCESS"
    schedule.refresh_from_db()
    assert schedule.enabled is False and schedule.next_fire_at is None
    assert schedule.periodic_task is not None and schedule.periodic_task.enabled is False
    assert fire_schedule(schedule.pk, (at + timedelta(seconds=1)).isoformat()) is None


def test_fired_without_a_fire_time_the_latest_due_one_counts(make_flow):
    schedule = Schedule.objects.create(
        name="plain-beat", flow=make_flow("echo", ECHO), interval_seconds=3600,
        start_at=timezone.now() - timedelta(hours=2, minutes=30),
    )
    pk = fire_schedule(schedule.pk)  # as django-celery-beat's own scheduler calls it
    assert fire_schedule(schedule.pk) is None  # same fire time: once
    assert schedule.start_at is not None
    assert _ended(pk).scheduled_for == schedule.start_at + timedelta(hours=2)
