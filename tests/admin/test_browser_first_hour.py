"""A new user's first hour in the admin, in a real browser (Debian's Chromium driven by
Playwright) against a live server and a real worker: Try runs what the editor shows, forms
stay on their page with the error next to the field, the pages read well.

Screenshots land in docs/screenshots/ (the README shows them), refreshed by each run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from executions.models import Execution, Flow, FlowRevision, Schedule

from .test_browser_admin import CHROMIUM, browser, execution_id, page, shot  # noqa: F401

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def test_try_with_unsaved_edits_saves_them_as_a_revision_and_runs_them(page: Any) -> None:  # noqa: F811
    flow = Flow.objects.create(name="greeter", script="def handler(system, this):\n    return this.success('old')\n")
    page.goto(f"/admin/executions/flow/{flow.pk}/change/")
    page.evaluate("window.flowEditor.setValue(\"def handler(system, this):\\n    return this.success('edited')\\n\")")
    page.fill("#id_start_input", '{"n": 1}')
    page.click("button.try-button")  # without saving first
    pk = execution_id(page)
    expect(page.locator(".messagelist")).to_contain_text("revision 2 of greeter")
    expect(page.locator("#execution-status")).to_have_text("Success", timeout=20_000)
    expect(page.locator("#execution-message")).to_have_text("edited")
    run = Execution.objects.get(pk=pk)
    assert (run.flow_revision, run.input_value, run.mode) == (2, {"n": 1}, "development")
    saved = FlowRevision.objects.get(flow=flow, revision=2).script.replace("\r\n", "\n")
    assert saved.strip() == "def handler(system, this):\n    return this.success('edited')"


def test_try_without_edits_starts_the_stored_revision_and_saves_none(page: Any) -> None:  # noqa: F811
    flow = Flow.objects.create(name="same", script="def handler(system, this):\n    return this.success('same')\n")
    page.goto(f"/admin/executions/flow/{flow.pk}/change/")
    page.click("button.try-button")
    pk = execution_id(page)
    expect(page.locator("#execution-message")).to_have_text("same", timeout=20_000)
    assert Execution.objects.get(pk=pk).flow_revision == 1
    assert FlowRevision.objects.filter(flow=flow).count() == 1


def test_try_with_an_edit_that_does_not_compile_keeps_the_edit_and_starts_nothing(page: Any) -> None:  # noqa: F811
    flow = Flow.objects.create(name="fragile", script="def handler(system, this):\n    return 1\n")
    page.goto(f"/admin/executions/flow/{flow.pk}/change/")
    page.evaluate("window.flowEditor.setValue('def handler(system, this):\\n    return [1,\\n')")
    page.fill("#id_start_input", '{"kept": true}')
    page.click("button.try-button")
    expect(page.locator(".field-script .errorlist")).to_contain_text("line")
    assert "return [1," in page.evaluate("window.flowEditor.getValue()")
    expect(page.locator("#id_start_input")).to_have_value('{"kept": true}')
    assert not Execution.objects.filter(flow=flow).exists()
    assert Flow.objects.get(pk=flow.pk).revision == 1


def test_try_with_bad_inputs_names_the_inputs_and_keeps_the_edit(page: Any) -> None:  # noqa: F811
    flow = Flow.objects.create(name="inputs", script="def handler(system, this):\n    return 1\n")
    page.goto(f"/admin/executions/flow/{flow.pk}/change/")
    page.evaluate("window.flowEditor.setValue('def handler(system, this):\\n    return 2\\n')")
    page.fill("#id_start_input", "{not json")
    page.click("button.try-button")
    expect(page.locator(".errorlist.nonfield")).to_contain_text("Inputs: Not valid JSON")
    assert "return 2" in page.evaluate("window.flowEditor.getValue()")
    assert not Execution.objects.filter(flow=flow).exists()


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# The contrast of a text colour on a background, as WCAG computes it (4.5 is its AA bar).
CONTRAST_JS = """(el) => {
  const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  let bg = el, color = getComputedStyle(el).color;
  while (bg && getComputedStyle(bg).backgroundColor.match(/rgba\\(.*, 0\\)|transparent/)) { bg = bg.parentElement; }
  const [a, b] = [lum(color), lum(getComputedStyle(bg).backgroundColor)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def test_a_refused_daily_answer_stays_on_the_form_with_the_error_by_its_label(page: Any) -> None:  # noqa: F811
    Flow.objects.create(name="Daily", script=(EXAMPLES / "Daily.py").read_text())
    report = Flow.objects.create(name="report", script="def handler(system, this):\n    return 1\n")
    page.goto(f"/admin/executions/flow/{report.pk}/change/")
    page.click("#helper-daily")
    pk = execution_id(page)
    form = page.locator("#execution-forms form.message-form")
    expect(form).to_be_visible(timeout=15_000)
    time_field = form.locator(".message-field[data-field=time]")
    assert time_field.locator("input").get_attribute("type") == "time"
    assert "HH:MM" not in time_field.inner_text()  # no 12-hour picker beside "HH:MM" text
    flow_field = form.locator(".message-field[data-field=flow]")
    assert flow_field.locator("input").get_attribute("required") is not None
    expect(flow_field.locator(".required-mark")).to_be_visible()
    time_field.locator("input").fill("07:30")
    form.locator("input[name=timezone]").fill("Mars/Olympus")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        form.locator("button[name=_submit]").click()
    assert posted.value.status == 200  # the form again, not a redirect
    error = page.locator(".message-field[data-field=timezone] .field-error")
    expect(error).to_contain_text("Time zone (e.g. Europe/Vienna): 'Mars/Olympus' is not a time zone")
    expect(page.locator(".messagelist")).to_have_count(0)  # no green banner
    expect(page.locator("input[name=timezone]")).to_have_value("Mars/Olympus")
    shot(page, "form-refused")
    assert page.goto(page.url).status == 200  # a reload of this page is the form, not a 405

    page.locator("input[name=time]").fill("07:30")
    page.locator("input[name=timezone]").fill("Europe/Vienna")
    page.locator("button[name=_submit]").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Answered")
    page.goto(f"/admin/executions/execution/{pk}/change/")
    expect(page.locator("#execution-status")).to_have_text("Success", timeout=20_000)
    assert Execution.objects.get(pk=pk).output_value["schedule"]["timezone"] == "Europe/Vienna"


def test_an_ended_execution_without_log_says_no_log_entries(page: Any) -> None:  # noqa: F811
    flow = Flow.objects.create(name="silent", script="def handler(system, this):\n    this.sleep(1.5)\n    return this.success('done')\n")
    page.goto(f"/admin/executions/flow/{flow.pk}/change/")
    page.click("button.try-button")
    execution_id(page)
    expect(page.locator("#no-log")).to_have_text("No log entries yet.")
    note = page.locator("#live-note")
    expect(note).to_have_text("updating live")
    assert note.evaluate(CONTRAST_JS) >= 4.5  # readable on the module header
    expect(page.locator("#execution-status")).to_have_text("Success", timeout=20_000)
    expect(page.locator("#no-log")).to_have_text("No log entries.")
    page.reload()
    expect(page.locator("#no-log")).to_have_text("No log entries.")


def test_children_show_as_a_tree_and_a_long_log_entry_is_folded(page: Any) -> None:  # noqa: F811
    Flow.objects.create(name="kid", script="def handler(system, this):\n    this.sleep(0.2)\n    return this.success('kid done')\n")
    parent = Flow.objects.create(name="family", script=(
        "def handler(system, this):\n"
        "    this.log('short entry')\n"
        "    this.log('Traceback (most recent call last):\\n' + 'frame line\\n' * 40)\n"
        "    this.flow('kid')\n"
        "    this.flow('kid')\n"
        "    return this.success('raised two')\n"
    ))
    page.goto(f"/admin/executions/flow/{parent.pk}/change/")
    page.click("button.try-button")
    execution_id(page)
    expect(page.locator("#execution-status")).to_have_text("Success", timeout=20_000)
    kids = page.locator("#execution-children ul.execution-tree > li")
    expect(kids).to_have_count(2)
    expect(kids.locator(".status").first).to_have_text("Success")
    expect(kids.first).to_contain_text(" s")  # its duration
    fold = page.locator("#execution-log details.log-fold")
    expect(fold).to_have_count(1)
    whole = fold.locator(".log-whole")
    expect(whole).to_be_hidden()
    fold.locator("summary").click()  # "show all"
    expect(whole).to_be_visible()
    expect(whole).to_contain_text("frame line")
    expect(page.locator("button.rerun-button")).to_have_text("Run again (revision 1)")
    shot(page, "execution-tree")

    page.goto("/admin/executions/execution/")
    head = page.locator("#result_list thead")
    for column in ("Flow", "Status", "Duration", "Started", "Trigger"):
        expect(head).to_contain_text(column)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits 1366 px
    shot(page, "execution-list")


def test_the_editor_is_dark_in_dark_mode(page: Any) -> None:  # noqa: F811
    flow = Flow.objects.create(name="night", script="def handler(system, this):\n    return 1  # dark\n")
    page.emulate_media(color_scheme="dark")
    page.goto(f"/admin/executions/flow/{flow.pk}/change/")
    background = page.locator(".field-script .CodeMirror").evaluate("el => getComputedStyle(el).backgroundColor")
    assert background == "rgb(30, 31, 34)"
    keyword = page.locator(".field-script .CodeMirror .cm-keyword").first
    assert keyword.evaluate(CONTRAST_JS) >= 4.5
    shot(page, "editor-dark")
    page.emulate_media(color_scheme="light")


def test_the_sidebar_leaves_library_tables_out_and_advanced_links_tokens(page: Any) -> None:  # noqa: F811
    page.goto("/admin/executions/flow/")
    sidebar = page.locator("#nav-sidebar")
    expect(sidebar).to_contain_text("Flows")
    for hidden in ("Auth token", "Knox", "Periodic task", "Crontab", "Interval"):
        expect(sidebar).not_to_contain_text(hidden, ignore_case=True)
    page.goto("/admin/")
    expect(page.locator("#content-main")).not_to_contain_text("Knox")
    page.click("#dash-advanced a")
    expect(page.locator("h1")).to_contain_text("auth token", ignore_case=True)


def test_a_schedule_page_runs_it_now_and_lists_its_firings(page: Any) -> None:  # noqa: F811
    flow = Flow.objects.create(name="report", script="def handler(system, this):\n    return this.success('reported')\n")
    schedule = Schedule.objects.create(name="hourly report", flow=flow, cron="0 * * * *")
    page.goto(f"/admin/executions/schedule/{schedule.pk}/change/")
    expect(page.locator(".field-firing_history")).to_contain_text("not fired yet")
    page.click("button.run-now-button")
    pk = execution_id(page)
    expect(page.locator("#execution-status")).to_have_text("Success", timeout=20_000)
    page.goto(f"/admin/executions/schedule/{schedule.pk}/change/")
    row = page.locator("table.firing-history tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"#{pk}")
    expect(row.locator(".status")).to_have_text("Success")
    row.scroll_into_view_if_needed()
    shot(page, "schedule-page")


def test_the_api_docs_render_offline_and_nothing_answers_404(page: Any) -> None:  # noqa: F811
    """Swagger UI and ReDoc draw the schema from the server's own files (the page fixture
    fails the test if anything outside the server is asked for); the icon and "View site"
    lead somewhere."""
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/executions/")
    shot(page, "api-docs")
    page.goto("/api/redoc/")
    expect(page.locator("redoc, [class*=redoc]").first).to_be_attached()
    expect(page.get_by_text("/api/executions/").first).to_be_visible(timeout=20_000)
    assert page.request.get("/favicon.ico").status == 200
    page.goto("/admin/executions/flow/")
    page.click("text=View site")
    expect(page.locator("#automation-dashboard")).to_be_visible()
