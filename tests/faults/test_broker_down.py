"""A broker stopped for real: an execution that is stored is accepted, never answered 500.

The web process (gunicorn, as the Procfile starts it) sends its messages to a Redis of its
own that the test kills; the database and the notices stay up. Each start is answered as
accepted, PENDING, with a `warning` naming the broker (in the admin: a warning message on
the execution's page), and the reconciler sends it later to the test's worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from executions import engine
from executions.engine.reconciler import reconcile
from executions.models import Execution, Schedule

from ..private_services import PrivateRedis, private_redis
from ..web_server import WebServer, running_web

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

QUICK = "def handler(system, this):\n    return {'ran': True}\n"


@pytest.fixture
def dead_broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path) as redis:
        yield redis


@pytest.fixture
def web(
    worker: Any, dead_broker: PrivateRedis, static_root: Path, tmp_path: Path
) -> Iterator[WebServer]:
    with running_web(tmp_path, static_root, BROKER_URL=dead_broker.url) as server:
        dead_broker.kill()  # stopped for real, after the web process started with it
        yield server


def _pending_then_sent_by_the_reconciler(pk: int) -> None:
    assert Execution.objects.get(pk=pk).status == "PENDING"
    # As if AUTOMATION_PENDING_RESEND_SECONDS had passed; this process's broker is up.
    Execution.objects.filter(pk=pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert reconcile()["resent"] >= 1
    ended = engine.wait_for([pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS" and ended.output_value == {"ran": True}


def test_a_start_the_broker_cannot_take_is_answered_201_pending_with_a_warning(
    web: WebServer, dead_broker: PrivateRedis, token: str, make_flow
) -> None:
    make_flow("quick", QUICK)

    answer = requests.post(
        f"{web.url}/api/executions/", json={"flow": "quick", "wait": 20},
        headers={"Authorization": f"Token {token}"}, timeout=60,
    )

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "PENDING"
    assert f"the broker (redis at 127.0.0.1:{dead_broker.port})" in body["warning"]
    assert "sent again" in body["warning"]
    assert answer.headers["Location"].endswith(f"/api/executions/{body['id']}/")
    assert Execution.objects.filter(name="quick").count() == 1  # stored once, accepted
    _pending_then_sent_by_the_reconciler(body["id"])


def test_a_schedule_run_now_the_broker_cannot_take_is_answered_201_with_a_warning(
    web: WebServer, dead_broker: PrivateRedis, token: str, make_flow
) -> None:
    Schedule.objects.create(name="hourly", flow=make_flow("quick", QUICK), interval_seconds=3600)

    answer = requests.post(
        f"{web.url}/api/schedules/hourly/run-now/", headers={"Authorization": f"Token {token}"},
        timeout=60,
    )

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "PENDING" and body["type"] == "SCHEDULE"
    assert f"the broker (redis at 127.0.0.1:{dead_broker.port})" in body["warning"]
    assert Execution.objects.filter(type="SCHEDULE").count() == 1


@pytest.mark.parametrize("query", ["", "?async=1"])
def test_a_webhook_call_the_broker_cannot_take_is_answered_202_with_a_warning(
    web: WebServer, dead_broker: PrivateRedis, make_flow, admin: Any, query: str
) -> None:
    make_flow("quick", QUICK)
    api = APIClient()
    api.force_authenticate(admin)
    made = api.post(
        "/api/webhooks/", {"name": "hook", "flow": "quick", "enabled": True}, format="json"
    )
    assert made.status_code == 201, made.json()

    answer = requests.post(
        f"{web.url}/api/webhooks/hook/call{query}", json={"n": 1},
        headers={"X-Webhook-Key": made.json()["key"]}, timeout=60,
    )

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "PENDING"
    assert f"the broker (redis at 127.0.0.1:{dead_broker.port})" in body["warning"]
    assert body["url"].endswith(f"/api/executions/{body['id']}/")
    _pending_then_sent_by_the_reconciler(body["id"])


def _admin_session(web: WebServer, user: Any) -> requests.Session:
    """A session of the shipped server, logged in by cookie (the test process hashes
    passwords with MD5, which the server as shipped does not accept)."""
    local = Client()
    local.force_login(user)
    session = requests.Session()
    session.cookies.set(settings.SESSION_COOKIE_NAME,
                        local.cookies[settings.SESSION_COOKIE_NAME].value)
    return session


def _csrf_token(page: requests.Response) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert page.status_code == 200 and found, page.text[:2000]
    return found.group(1)


@pytest.mark.parametrize("button", ["start page", "flow page"])
def test_the_admins_run_the_broker_cannot_take_shows_the_warning_and_the_pending_row(
    web: WebServer, dead_broker: PrivateRedis, make_flow, admin: Any, button: str
) -> None:
    flow = make_flow("quick", QUICK)
    session = _admin_session(web, admin)
    if button == "start page":  # the Run of the start page (and of the flow list's actions)
        url = web.url + reverse("admin:executions_flow_start", args=[flow.pk])
        form = {"mode": "productive", "input_value": ""}
    else:  # the flow page's Run: it starts inside the admin's save transaction
        url = web.url + reverse("admin:executions_flow_change", args=[flow.pk])
        form = {
            "name": flow.name, "description": "", "script": flow.script, "enabled": "on",
            "timeout": "", "queue": "", "error_handler": "", "retry_policy": "{}",
            "recovery": "fail", "_start": "productive", "_start_input": "",
        }
    form["csrfmiddlewaretoken"] = _csrf_token(session.get(url, timeout=30))

    answer = session.post(url, data=form, headers={"Referer": url}, timeout=60)

    assert answer.status_code == 200, answer.text[-3000:]  # the execution's page, redirected to
    execution = Execution.objects.get(name="quick")  # stored once, accepted
    assert answer.url.endswith(reverse("admin:executions_execution_change", args=[execution.pk]))
    warnings = re.findall(r'<li class="warning">(.*?)</li>', answer.text, re.S)
    assert any(
        f"Execution {execution.pk}: accepted, but the broker (redis at 127.0.0.1:"
        f"{dead_broker.port})" in text and "sent again" in text for text in warnings
    ), warnings
    assert 'class="status status-PENDING"' in answer.text
    _pending_then_sent_by_the_reconciler(execution.pk)


def test_the_schema_documents_the_warning_of_an_accepted_start(api: APIClient) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    started = schema["paths"]["/api/executions/"]["post"]["responses"]["201"]
    assert "`warning`" in started["description"]
