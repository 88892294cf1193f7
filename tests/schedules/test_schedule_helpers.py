"""The Recurring and Daily helper flows create working schedules from answered forms;
run-now fires a schedule at once through the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from executions import engine
from executions.models import Execution, Flow, Message, Schedule
from executions.tasks import fire_schedule

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def helpers(db: None) -> None:
    for name in ("Recurring", "Daily"):
        Flow.objects.create(name=name, script=(EXAMPLES / f"{name}.py").read_text())


def _answer(api: APIClient, execution: Execution, response: dict) -> dict:
    message = wait_until(
        lambda: Message.objects.filter(execution=execution, status="open").first(), timeout=20
    )
    answer = api.post(f"/api/messages/{message.pk}/respond/", {"response": response}, format="json")
    assert answer.status_code == 200, answer.json()
    return answer.json()


def test_the_recurring_helper_creates_a_working_schedule_from_an_answered_form(
    helpers, make_flow, api
):
    make_flow("report", "def handler(system, this):\n    return {'ok': True}\n")
    helper = engine.start_execution(flow="Recurring", input_value={"flow": "report"})
    form = wait_until(lambda: Message.objects.filter(execution=helper).first(), timeout=20)
    assert form.body["properties"]["flow"]["default"] == "report"

    _answer(api, helper, {"flow": "report", "interval_seconds": 120, "name": "report-2m"})

    ended = engine.wait_for([helper.pk], timeout=20)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["schedule"]["interval_seconds"] == 120
    schedule = Schedule.objects.get(name="report-2m")
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).interval.every == 120
    assert schedule.next_fire_at is not None
    firing = fire_schedule(schedule.pk, schedule.next_fire_at.isoformat())
    assert firing is not None
    assert engine.wait_for([firing], timeout=20)[0].status == "ENDED_SUCCESS"


def test_the_recurring_helper_asks_again_when_the_flow_does_not_exist(helpers, make_flow, api):
    make_flow("report", "def handler(system, this):\n    pass\n")
    helper = engine.start_execution(flow="Recurring")
    _answer(api, helper, {"flow": "no-such-flow", "interval_seconds": 60})
    wait_until(lambda: Message.objects.filter(execution=helper).count() == 2, timeout=20)
    _answer(api, helper, {"flow": "report", "interval_seconds": 60})
    assert engine.wait_for([helper.pk], timeout=20)[0].status == "ENDED_SUCCESS"
    flow = Schedule.objects.get().flow
    assert flow is not None and flow.name == "report"


def test_the_daily_helper_creates_a_cron_schedule_in_the_time_zone(helpers, make_flow, api):
    make_flow("backup", "def handler(system, this):\n    pass\n")
    helper = engine.start_execution(flow="Daily", mode="development")  # a Try
    _answer(api, helper, {"flow": "backup", "time": "02:30", "timezone": "Europe/Vienna"})
    assert engine.wait_for([helper.pk], timeout=20)[0].status == "ENDED_SUCCESS"
    schedule = Schedule.objects.get()
    assert (schedule.cron, schedule.timezone) == ("30 2 * * *", "Europe/Vienna")
    assert schedule.mode == "development"  # a Try of the helper makes a Try schedule
    assert schedule.next_fire_at is not None


def test_run_now_fires_a_schedule_at_once_through_the_api(make_flow, api):
    flow = make_flow("report", "def handler(system, this):\n    return {'ok': True}\n")
    Schedule.objects.create(name="weekly", flow=flow, cron="0 6 * * 1")

    answer = api.post("/api/schedules/weekly/run-now/")

    assert answer.status_code == 201
    body = answer.json()
    assert (body["type"], body["name"], body["trigger"]) == ("SCHEDULE", "weekly", "schedule")
    assert engine.wait_for([body["id"]], timeout=20)[0].status == "ENDED_SUCCESS"
    assert Schedule.objects.get(name="weekly").last_fired_at is None  # not a fire time
