"""Isolation is visible: the worker's start-up log, /ready and the dashboard say which it has,
and a worker that cannot give full isolation refuses flows, saying what to change."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from executions import engine

from ..workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def test_a_worker_that_cannot_isolate_refuses_flows_saying_what_to_change(make_flow, tmp_path):
    make_flow("refused-here", "def handler(system, this):\n    return {'ran': True}\n", queue="refused")
    env = {"AUTOMATION_FLOW_ISOLATION": "full", "AUTOMATION_FLOW_USER": "no-such-flow-user"}
    with running_worker(queues=["refused.productive"], concurrency=1, name="refusing",
                        tmp_dir=tmp_path, extra_env=env) as worker:
        started = engine.start_execution(flow="refused-here")
        ended = engine.wait_for([started.pk], timeout=30)[0]
        log = worker.log()

    assert ended.status == "ENDED_ERROR"
    assert ended.message.startswith("full isolation is not possible")
    assert "AUTOMATION_FLOW_ISOLATION" in ended.message
    assert ended.output_value == {}  # the flow never ran
    assert "flow isolation: full isolation is not possible" in log
    assert "flows are refused" in log


def test_ready_and_the_dashboard_say_how_each_worker_isolates_flows(worker, admin_client):
    def described() -> dict:
        body = Client().get("/ready").json()
        return body["checks"].get("isolation") or {}

    found = wait_until(lambda: described().get(worker.name), timeout=15)
    assert found.startswith(("full: flow code runs as", "none: flow code runs as"))
    page = html.unescape(admin_client.get("/admin/").content.decode())
    assert "Flow isolation:" in page and f"{worker.name}: {found}" in page.replace("</strong>", "").replace("<strong>", "")
