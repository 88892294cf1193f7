"""Error handlers: a flow's `error_handler` (or AUTOMATION_DEFAULT_ERROR_HANDLER) starts once
when an execution of the flow ends ENDED_ERROR, with the failure as its input."""

from __future__ import annotations

import html
from typing import Any

import pytest

from executions import engine
from executions.models import Execution, ExecutionLog, Schedule
from executions.schedules.firing import fire

from ..workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]

FAILING = "def handler(system, this):\n    raise ValueError('boom')\n"
SUCCEEDING = "def handler(system, this):\n    return {'ok': True}\n"
# The handler returns what it was given, so the test reads its input as a user would.
HANDLER = "def handler(system, this):\n    return {'got': this.get('input_value')}\n"


def _handler_runs(flow: str | None = None) -> Any:
    runs = Execution.objects.filter(trigger=Execution.Trigger.ERROR_HANDLER)
    return runs.filter(flow__name=flow) if flow else runs


def _ended_handler_run(flow: str, timeout: float = 30) -> Execution:
    return wait_until(
        lambda: _handler_runs(flow).filter(status__in=Execution.ENDED).first(), timeout=timeout
    )


def _settled(seconds: float = 1.5) -> None:
    """Give a wrongly started handler time to appear before asserting there is none."""
    import time

    time.sleep(seconds)


def test_an_error_handler_starts_once_with_the_failed_executions_id(make_flow, run_flow):
    make_flow("on-failure", HANDLER)
    make_flow("fragile", FAILING, error_handler="on-failure")
    failed = run_flow("fragile", mode="development")
    assert failed.status == "ENDED_ERROR"

    handler = _ended_handler_run("on-failure")
    assert handler.status == "ENDED_SUCCESS", handler.message
    assert handler.mode == "development"
    assert handler.trigger == "error_handler" and handler.trigger_ref == str(failed.pk)
    expected = {
        "execution_id": failed.pk, "flow": "fragile", "status_message": failed.message,
        "attempt": 1,
    }
    assert handler.input_value == expected
    assert handler.output_value == {"got": expected}
    assert "ValueError: boom" in failed.message
    _settled()
    assert _handler_runs().count() == 1
    assert ExecutionLog.objects.filter(
        execution=failed, level="INFO", text=f"error handler 'on-failure' started as execution {handler.pk}"
    ).exists()


def test_a_successful_execution_starts_no_error_handler(make_flow, run_flow):
    make_flow("on-failure", HANDLER)
    make_flow("sturdy", SUCCEEDING, error_handler="on-failure")
    assert run_flow("sturdy").status == "ENDED_SUCCESS"
    _settled()
    assert not _handler_runs().exists()


def test_a_failing_error_handler_starts_no_further_handler(make_flow, run_flow):
    make_flow("second", HANDLER)
    make_flow("on-failure", FAILING, error_handler="second")
    make_flow("fragile", FAILING, error_handler="on-failure")
    assert run_flow("fragile").status == "ENDED_ERROR"

    handler = _ended_handler_run("on-failure")
    assert handler.status == "ENDED_ERROR"
    _settled()
    assert list(_handler_runs().values_list("flow__name", flat=True)) == ["on-failure"]


def test_a_timed_out_execution_starts_its_error_handler_once(make_flow, run_flow):
    make_flow("on-failure", HANDLER)
    make_flow("slow", "import time\n\ndef handler(system, this):\n    time.sleep(30)\n",
              timeout=1, error_handler="on-failure")
    failed = run_flow("slow")
    assert (failed.status, failed.message) == ("ENDED_ERROR", "timed out after 1 s")
    handler = _ended_handler_run("on-failure")
    assert handler.input_value["execution_id"] == failed.pk
    assert handler.input_value["status_message"] == "timed out after 1 s"
    _settled()
    assert _handler_runs().count() == 1


def test_a_failing_scheduled_flow_starts_its_handler_once_for_the_flow_execution(make_flow):
    make_flow("on-failure", HANDLER)
    flow = make_flow("nightly-job", FAILING, error_handler="on-failure")
    schedule = Schedule.objects.create(name="nightly", flow=flow, cron="0 3 * * *")
    firing = fire(schedule.pk, manual=True)
    assert firing is not None
    assert engine.wait_for([firing.pk], timeout=30)[0].status == "ENDED_ERROR"

    handler = _ended_handler_run("on-failure")
    flow_run = Execution.objects.get(parent=firing, type="FLOW")
    assert handler.input_value["execution_id"] == flow_run.pk
    assert handler.input_value["flow"] == "nightly-job"
    _settled()
    assert _handler_runs().count() == 1


def test_a_handler_that_cannot_start_is_a_warning_in_the_failed_executions_log(make_flow, run_flow):
    make_flow("on-failure", HANDLER, enabled=False)
    make_flow("fragile", FAILING, error_handler="on-failure")
    failed = run_flow("fragile")
    warning = wait_until(
        lambda: ExecutionLog.objects.filter(execution=failed, level="WARNING").first(), timeout=10
    )
    assert warning.text == "error handler 'on-failure' not started: flow 'on-failure' is disabled"
    assert not _handler_runs().exists()


def test_the_default_error_handler_runs_for_flows_that_name_none(make_flow, run_flow, tmp_path):
    make_flow("fallback", HANDLER, queue="errh")
    make_flow("own-handler", HANDLER, queue="errh")
    make_flow("plain", FAILING, queue="errh")
    make_flow("picky", FAILING, queue="errh", error_handler="own-handler")
    with running_worker(
        queues=["errh.productive"], concurrency=1, name="errh", tmp_dir=tmp_path,
        extra_env={"AUTOMATION_DEFAULT_ERROR_HANDLER": "fallback"},
    ):
        plain, picky = run_flow("plain"), run_flow("picky")
        assert _ended_handler_run("fallback").input_value["execution_id"] == plain.pk
        assert _ended_handler_run("own-handler").input_value["execution_id"] == picky.pk
        _settled()
    assert _handler_runs().count() == 2


def test_the_api_refuses_an_error_handler_that_names_no_other_flow(api, make_flow):
    make_flow("on-failure", HANDLER)
    created = api.post("/api/flows/", {"name": "f", "script": FAILING, "error_handler": "nope"},
                       format="json")
    assert created.status_code == 400
    assert "error_handler" in created.json() and "nope" in str(created.json()["error_handler"])
    created = api.post("/api/flows/", {"name": "f", "script": FAILING, "error_handler": "on-failure"},
                       format="json")
    assert created.status_code == 201 and created.json()["error_handler"] == "on-failure"
    itself = api.patch("/api/flows/f/", {"error_handler": "f"}, format="json")
    assert itself.status_code == 400 and "error_handler" in itself.json()
    cleared = api.patch("/api/flows/f/", {"error_handler": ""}, format="json")
    assert cleared.status_code == 200 and cleared.json()["error_handler"] == ""


def test_the_dashboard_shows_error_handler_runs(make_flow, run_flow, admin_client):
    make_flow("on-failure", HANDLER)
    make_flow("fragile", FAILING, error_handler="on-failure")
    failed = run_flow("fragile")
    handler = _ended_handler_run("on-failure")
    page = html.unescape(admin_client.get("/admin/").content.decode())
    assert "Error handler runs (24 h)" in page
    assert f"/admin/executions/execution/{handler.pk}/change/" in page
    assert f"#{handler.pk} on-failure" in page and f"#{failed.pk}</a>" in page


def test_the_admin_flow_form_refuses_an_unknown_error_handler(make_flow):
    from executions.admin.executions import FlowForm

    form = FlowForm(data={"name": "f", "script": FAILING, "enabled": True, "error_handler": "nope"})
    assert not form.is_valid()
    assert form.errors["error_handler"] == ["no flow named 'nope'"]
    make_flow("on-failure", HANDLER)
    form = FlowForm(data={"name": "f", "script": FAILING, "enabled": True, "error_handler": "on-failure"})
    assert form.is_valid(), form.errors
