"""The admin in a real browser (Debian's Chromium driven by Playwright) against a live
server and a real worker: write a flow, try it, watch it end live, run it again, cancel a
long one, refuse a script that does not compile, compare and restore revisions.

Screenshots of the pages land in docs/screenshots/ (the READMEs show them): each run
refreshes them, so they show the admin as it is.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from executions.models import Execution, Flow

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # around it are still plain synchronous calls, so Django may allow them.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with playwright_sync.sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A logged-in admin page on the live server."""
    from django.contrib.auth.models import User

    User.objects.create_superuser("ada", "ada@example.org", "pw-ada-123")
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    # Nothing outside the live server may be reached: the editor is served from our files.
    outside: list[str] = []
    def note_outside(request: Any) -> None:
        if not request.url.startswith((live_server.url, "data:", f"blob:{live_server.url}")):
            outside.append(request.url)

    def forget_refused(request: Any) -> None:  # refused by the page's own policy: never sent
        if request.url in outside and "csp" in str(request.failure):
            outside.remove(request.url)

    tab.on("request", note_outside)
    tab.on("requestfailed", forget_refused)
    # Every test logs in with the same name and address: forget the login throttle's counts
    # (in this process's cache, which the live server shares) so a long run is not refused.
    cache.clear()
    tab.goto("/admin/login/?next=/admin/")
    tab.fill("#id_username", "ada")
    tab.fill("#id_password", "pw-ada-123")
    tab.click("input[type=submit]")
    expect(tab.locator("#automation-dashboard")).to_be_visible()
    try:
        yield tab
    finally:
        context.close()
    assert outside == [], f"the page reached outside the server: {outside}"


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    # The visible part only (1366 x 900): what a person sees first, and a small file.
    page.screenshot(path=str(path))
    return path


def execution_id(page: Any) -> int:
    page.wait_for_url(re.compile(r"/admin/executions/execution/\d+/change/"))
    return int(re.search(r"/execution/(\d+)/change/", page.url).group(1))  # type: ignore[union-attr]


def test_a_user_writes_a_flow_tries_it_and_sees_its_log_and_success_live(page: Any) -> None:
    page.goto("/admin/executions/flow/add/")
    page.fill("#id_name", "counter")
    page.click(".field-script .CodeMirror")
    # Typed as a person types: the editor indents after a colon and keeps the indentation.
    for line in ("def handler(system, this):", "for i in range(3):", "this.log('step', i=i)"):
        page.keyboard.type(line)
        page.keyboard.press("Enter")
    page.keyboard.type("this.sleep(0.7)")
    page.keyboard.press("Enter")
    page.keyboard.press("Shift+Tab")
    page.keyboard.type("return this.success('counted to ' + str(inputs_of(this)))")
    typed = page.evaluate("window.flowEditor.getValue()")
    assert typed == textwrap.dedent(
        """\
        def handler(system, this):
            for i in range(3):
                this.log('step', i=i)
                this.sleep(0.7)
            return this.success('counted to ' + str(inputs_of(this)))"""
    )
    page.keyboard.press("Enter")
    page.keyboard.press("Shift+Tab")
    page.keyboard.type("\ndef inputs_of(this):\nreturn this.get('input_value')['who']")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    shot(page, "flow-page")

    page.fill("#id_start_input", '{"who": "ada"}')
    page.click("button.try-button")
    first = execution_id(page)
    page.evaluate("window.notReloaded = true")
    assert page.locator("#execution-live").get_attribute("data-ended") == "false"
    # The log lines arrive while the flow runs, then the status turns to success.
    page.wait_for_function(
        "document.querySelectorAll('#execution-log tbody tr').length >= 1"
        " && document.getElementById('execution-live').dataset.ended === 'false'",
        timeout=15_000,
    )
    expect(page.locator("#execution-log tbody tr")).to_have_count(3, timeout=15_000)
    expect(page.locator("#execution-status")).to_have_text("Success", timeout=20_000)
    expect(page.locator("#execution-message")).to_have_text("counted to ada")
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#execution-log")).to_contain_text('{"i": 2}')
    shot(page, "execution-page")
    run = Execution.objects.get(pk=first)
    assert (run.mode, run.status, run.trigger, run.flow_revision) == (
        "development", "ENDED_SUCCESS", "admin", 1,
    )

    page.click("button.rerun-button")
    second = execution_id(page)
    assert second != first
    expect(page.locator("#execution-status")).to_have_text("Success", timeout=20_000)
    again = Execution.objects.get(pk=second)
    assert (again.input_value, again.mode) == ({"who": "ada"}, "development")

    page.goto("/admin/executions/flow/")
    page.locator("input[name=_selected_action]").first.check()
    page.select_option("select[name=action]", "run_flows")
    page.fill("input[name=input_value]", '{"who": "bob"}')
    page.click("button[name=index]")
    third = execution_id(page)
    expect(page.locator("#execution-message")).to_have_text("counted to bob", timeout=20_000)
    assert Execution.objects.get(pk=third).mode == "productive"

    page.goto("/admin/")
    expect(page.locator("#automation-dashboard")).to_contain_text("Last hour")
    shot(page, "dashboard")


def test_a_flow_that_does_not_compile_is_refused_with_its_line(page: Any) -> None:
    page.goto("/admin/executions/flow/add/")
    page.fill("#id_name", "broken")
    page.evaluate(
        "window.flowEditor.setValue('def handler(system, this):\\n    x = [1,\\n    return x\\n')"
    )
    page.click("input[name=_save]")
    error = page.locator(".field-script .errorlist")
    expect(error).to_contain_text(re.compile(r"line [23]"))
    expect(page.locator(".CodeMirror .cm-error-line")).to_have_count(1)
    assert not Flow.objects.filter(name="broken").exists()


def test_a_flow_without_a_handler_is_refused_naming_handler(page: Any) -> None:
    page.goto("/admin/executions/flow/add/")
    page.fill("#id_name", "nohandler")
    page.evaluate("window.flowEditor.setValue('def main(system, this):\\n    return 1\\n')")
    page.click("input[name=_save]")
    expect(page.locator(".field-script .errorlist")).to_contain_text("handler(system, this)")
    assert not Flow.objects.filter(name="nohandler").exists()


def test_cancelling_a_sleeping_flow_cancels_its_child_too(page: Any) -> None:
    Flow.objects.create(name="sleeper", script="def handler(system, this):\n    this.sleep(60)\n")
    parent = Flow.objects.create(
        name="waits-for-sleeper",
        script="def handler(system, this):\n    this.log('starting child')\n    this.flow('sleeper')\n",
    )
    page.goto(f"/admin/executions/flow/{parent.pk}/change/")
    page.click("button.try-button")
    pk = execution_id(page)
    child_link = page.locator("#execution-children a")
    expect(child_link).to_have_count(1, timeout=15_000)  # the child appears without a reload
    expect(page.locator("#execution-children .status")).to_have_text(re.compile("Running|Waiting"))
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button.cancel-button")
    expect(page.locator(".messagelist")).to_contain_text("Cancelled execution")
    expect(page.locator("#execution-status")).to_have_text("Cancelled")
    expect(page.locator("#execution-children .status")).to_have_text("Cancelled")
    expect(page.locator("button.cancel-button")).to_have_count(0)
    child = Execution.objects.get(parent_id=pk)
    assert child.status == "ENDED_CANCELLED"


def test_a_user_compares_two_revisions_and_restores_the_old_one(page: Any) -> None:
    flow = Flow.objects.create(
        name="evolving", script="def handler(system, this):\n    return this.success('v1')\n"
    )
    page.goto(f"/admin/executions/flow/{flow.pk}/change/")
    page.evaluate(
        "window.flowEditor.setValue(\"def handler(system, this):\\n    this.log('new')\\n"
        "    return this.success('v2')\\n\")"
    )
    page.click("input[name=_continue]")
    expect(page.locator("#flow-revisions")).to_contain_text("ada")

    page.click("#content .object-tools >> text=Revisions")
    page.check("input[name=a][value='1']")
    page.check("input[name=b][value='2']")
    page.click("#compare-button")
    diff = page.locator("#revision-diff")
    expect(diff.locator(".diff-del")).to_contain_text("this.success('v1')")
    expect(diff.locator(".diff-add")).to_have_count(2)
    expect(diff.locator(".diff-add").first).to_contain_text("this.log('new')")
    shot(page, "revision-diff")

    page.click("button[form=restore-1]")
    expect(page.locator(".messagelist")).to_contain_text("Restored revision 1")
    assert "v1" in page.evaluate("window.flowEditor.getValue()")
    flow.refresh_from_db()
    assert (flow.revision, "v1" in flow.script) == (3, True)
    assert flow.revisions.get(revision=3).author.username == "ada"  # type: ignore[union-attr]
