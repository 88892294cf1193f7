"""The web process as it ships: gunicorn started exactly as the Procfile says, serving the
API on kept-alive connections, static files with far-future cache headers, `/health`,
`/ready` and `/metrics`, and a bounded number of database connections under load."""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from executions.models import Flow

from ..admin.test_browser_admin import CHROMIUM, browser  # noqa: F401
from ..web_server import WebServer, running_web
from ..workers import wait_until

NOOP = "def handler(system, this):\n    return {'ok': True}\n"
pytestmark = pytest.mark.core  # what `make run` serves, also on the embedded default and RabbitMQ


@pytest.fixture(scope="module")
def web(worker_process: Any, static_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with running_web(tmp_path_factory.mktemp("web"), static_root) as server:
        yield server


def _metrics(web: WebServer) -> dict[str, float]:
    answer = requests.get(f"{web.url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    values = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_health_answers_ok_without_credentials(web: WebServer) -> None:
    answer = requests.get(f"{web.url}/health", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_ready_names_the_live_worker_of_the_default_group(web: WebServer, worker: Any) -> None:
    answer = requests.get(f"{web.url}/ready", timeout=5)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    assert worker.name in body["checks"]["workers"]


def test_api_calls_share_one_kept_alive_connection(web: WebServer, token: str) -> None:
    Flow.objects.create(name="web-noop", script=NOOP)
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    try:
        for _ in range(5):  # http.client never reconnects: a closed connection would raise
            conn.request("POST", "/api/executions/", json.dumps({"flow": "web-noop", "wait": 20}), headers)
            answer = conn.getresponse()
            body = json.loads(answer.read())
            assert answer.status == 201, body
            assert body["status"] == "ENDED_SUCCESS"
            assert body["output_value"] == {"ok": True}
            conn.request("GET", f"/api/executions/{body['id']}/", headers=headers)
            answer = conn.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["id"] == body["id"]
            assert answer.getheader("Connection", "keep-alive").lower() != "close"
    finally:
        conn.close()


def test_static_files_are_compressed_with_hashed_names_cached_for_a_year(web: WebServer) -> None:
    page = requests.get(f"{web.url}/admin/login/", timeout=10)
    assert page.status_code == 200
    found = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
    assert found, "the admin's stylesheet is not linked by its hashed name"
    answer = requests.get(web.url + found.group(1), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Encoding"] == "gzip"
    assert "max-age=315360000" in answer.headers["Cache-Control"]
    assert "immutable" in answer.headers["Cache-Control"]
    assert "body" in answer.text


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_are_served_whole_by_the_shipped_server(web: WebServer, page: str) -> None:
    answer = requests.get(web.url + page, timeout=10)
    assert answer.status_code == 200
    assets = re.findall(r'''(?:src|href)="([^"]+)"''', answer.text)
    assert any(url.endswith(".js") for url in assets), answer.text
    for url in assets:  # hashed names from collectstatic, served by whitenoise
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        assert requests.get(web.url + url, timeout=10).status_code == 200, url


def test_favicon_ico_answers_an_icon(web: WebServer) -> None:
    answer = requests.get(f"{web.url}/favicon.ico", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("image/svg+xml")


def test_metrics_count_exactly_the_executions_started_and_ended(web: WebServer, token: str) -> None:
    Flow.objects.create(name="web-counted", script=NOOP)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    started = 'automation_executions_started_total{mode="development",trigger="api",type="FLOW"}'
    ended = 'automation_executions_ended_total{status="ENDED_SUCCESS",type="FLOW"}'
    durations = 'automation_execution_duration_seconds_count{type="FLOW"}'
    def settled() -> dict[str, float]:
        """Counts of earlier tests arrive up to 0.5 s late (each process sends in batches):
        start from totals that stay put for a second."""
        first = _metrics(web)
        time.sleep(1)
        second = _metrics(web)
        keys = (started, ended, durations)
        return second if all(first.get(k) == second.get(k) for k in keys) else {}

    before = wait_until(settled, 20)
    for _ in range(7):
        answer = session.post(
            f"{web.url}/api/executions/",
            json={"flow": "web-counted", "mode": "development", "wait": 20}, timeout=30,
        )
        assert answer.status_code == 201 and answer.json()["status"] == "ENDED_SUCCESS", answer.text

    def moved(metrics: dict[str, float]) -> bool:  # each process sends its counts every 0.5 s
        return all(metrics.get(k, 0) >= before.get(k, 0) + 7 for k in (started, ended))

    after = wait_until(lambda: (m := _metrics(web)) and moved(m) and m, 10)
    time.sleep(1)  # and then nothing more: exactly seven each
    after = _metrics(web)
    assert after[started] - before.get(started, 0) == 7
    assert after[ended] - before.get(ended, 0) == 7
    assert after[durations] - before.get(durations, 0) >= 7
    for name in (
        "automation_queue_depth", "automation_workers", "automation_executions_waiting",
        "automation_schedule_lag_seconds_count",
    ):
        assert any(key.startswith(name) for key in after), f"{name} is missing"
    assert after['automation_workers{queue="default.productive"}'] >= 1


def test_metrics_need_the_token_from_outside_loopback(worker: Any, client: Any) -> None:
    far = {"REMOTE_ADDR": "192.0.2.7"}
    answer = client.get("/metrics", **far)
    assert answer.status_code == 403
    assert "AUTOMATION_METRICS_TOKEN" in answer.json()["detail"]
    settings.AUTOMATION["METRICS_TOKEN"] = "scrape-me"
    try:
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **far).status_code == 403
        answer = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me", **far)
        assert answer.status_code == 200
        assert b"automation_executions_started_total" in answer.content
    finally:
        settings.AUTOMATION["METRICS_TOKEN"] = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_the_admin_in_a_browser_against_the_shipped_server(
    web: WebServer, browser: Any, django_user_model: Any, worker: Any  # noqa: F811
) -> None:
    from django.test import Client

    # Logged in by a session cookie: the test process hashes passwords with MD5, which the
    # server (as shipped) does not accept.
    user = django_user_model.objects.create_superuser("grace", password="pw-grace-123")
    local = Client()
    local.force_login(user)
    session_id = local.cookies[settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(base_url=web.url, viewport={"width": 1366, "height": 900})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_id, "url": web.url}])
    context.set_default_timeout(15_000)
    failed: list[str] = []
    tab = context.new_page()
    tab.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        tab.goto("/admin/")
        tab.locator("#automation-dashboard").wait_for(state="visible")
        tab.goto("/admin/executions/execution/")
        tab.locator("#result_list, #changelist").first.wait_for(state="visible")
        # The stylesheets came from whitenoise: the page is laid out, not bare HTML.
        loaded = tab.evaluate(
            "[...document.styleSheets].filter(s => s.href && s.cssRules.length > 0).length"
        )
        assert loaded >= 1, "no stylesheet of the admin was loaded"
    finally:
        context.close()
    assert failed == [], f"answers of 400 or more: {failed}"


def test_the_grafana_dashboard_asks_only_for_metrics_that_are_exported(worker: Any, client: Any) -> None:
    dashboard = json.loads((Path(settings.BASE_DIR) / "docs" / "grafana-dashboard.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"automation_[a-z_]+", target["expr"])
    }
    exported = set(re.findall(r"^(automation_[a-z_]+)", client.get("/metrics").content.decode(), re.M))
    assert asked and asked <= exported, asked - exported
