"""Message forms in a real browser (Debian's Chromium driven by Playwright) against a live
server and a real worker: a flow asks, the user answers on the execution's page and sees
the flow finish; the Recurring button leads to a form whose answer makes a working schedule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from executions import engine
from executions.models import Execution, Flow, Message, Schedule
from executions.tasks import fire_schedule

from .test_browser_admin import CHROMIUM, browser, execution_id, page, shot  # noqa: F401

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

ASKING = """\
def handler(system, this):
    this.log('asking')
    answer = this.message('Which city?', 'The report needs a city.', body={
        'type': 'object',
        'properties': {
            'note': {'element': 'markdown', 'label': 'Pick **one** city.', 'order': 0},
            'city': {'label': 'City', 'element': 'string', 'type': 'string', 'order': 1},
            'days': {'label': 'Days', 'element': 'number', 'type': 'number', 'order': 2},
            'send': {'label': 'Send', 'element': 'submit', 'order': 3},
        },
        'required': ['city', 'days'],
    })
    return this.success(f"report for {answer['city']} over {answer['days']} days")
"""


def test_a_user_answers_a_form_in_the_page_and_sees_the_flow_finish(page: Any) -> None:  # noqa: F811
    flow = Flow.objects.create(name="asks-city", script=ASKING)
    page.goto(f"/admin/executions/flow/{flow.pk}/change/")
    page.click("button.try-button")
    pk = execution_id(page)
    form = page.locator("#execution-forms form.message-form")
    expect(form).to_be_visible(timeout=15_000)  # appears live, without a reload
    expect(page.locator("#execution-status")).to_have_text("Waiting")
    expect(page.locator("#open-forms")).to_be_visible()
    expect(form.locator(".markdown-text")).to_contain_text("Pick **one** city.")

    form.locator("input[name=city]").fill("Linz")
    form.locator("input[name=days]").fill("")
    form.locator("button[value=send]").click()
    error = page.locator(".message-field[data-field=days] .field-error")
    expect(error).to_contain_text("required")  # the refused answer, next to its field

    page.locator("input[name=days]").fill("7")
    page.locator("button[value=send]").click()
    expect(page.locator(".messagelist")).to_contain_text("Answered")
    page.goto(f"/admin/executions/execution/{pk}/change/")
    expect(page.locator("#execution-status")).to_have_text("Success", timeout=20_000)
    expect(page.locator("#execution-message")).to_have_text("report for Linz over 7 days")
    assert Message.objects.get(execution_id=pk).response == {"city": "Linz", "days": 7, "send": True}


def test_the_recurring_button_leads_to_a_form_that_makes_a_working_schedule(page: Any) -> None:  # noqa: F811
    for name in ("Recurring", "Daily"):
        Flow.objects.create(name=name, script=(EXAMPLES / f"{name}.py").read_text())
    report = Flow.objects.create(name="report", script="def handler(system, this):\n    return {'ok': 1}\n")
    page.goto(f"/admin/executions/flow/{report.pk}/change/")
    page.click("#helper-recurring")
    pk = execution_id(page)
    assert Execution.objects.get(pk=pk).name == "Recurring"
    form = page.locator("#execution-forms form.message-form")
    expect(form).to_be_visible(timeout=15_000)
    expect(form.locator("input[name=flow]")).to_have_value("report")
    form.locator("input[name=interval_seconds]").fill("120")
    form.locator("input[name=name]").fill("report every 2 min")
    shot(page, "message-form")
    form.locator("button[name=_submit]").click()
    expect(page.locator("#execution-status")).to_have_text("Success", timeout=20_000)

    schedule = Schedule.objects.get(name="report every 2 min")
    assert (schedule.flow, schedule.interval_seconds) == (report, 120)
    page.goto(f"/admin/executions/schedule/{schedule.pk}/change/")
    expect(page.locator("ol.fire-times li")).to_have_count(5)
    assert schedule.next_fire_at is not None
    firing = fire_schedule(schedule.pk, schedule.next_fire_at.isoformat())
    assert firing is not None
    assert engine.wait_for([firing], timeout=20)[0].status == "ENDED_SUCCESS"
