"""A broker stopped for real: an execution that is stored is accepted, never answered 500.

The web process (gunicorn, as the Procfile starts it) sends its messages to a Redis of its
own that the test kills; the database and the notices stay up. Each start is answered as
accepted, PENDING, with a `warning` naming the broker, and the reconciler sends it later to
the test's worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from executions import engine
from executions.engine.reconciler import reconcile
from executions.models import Execution

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


def test_the_schema_documents_the_warning_of_an_accepted_start(api: APIClient) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    started = schema["paths"]["/api/executions/"]["post"]["responses"]["201"]
    assert "`warning`" in started["description"]
