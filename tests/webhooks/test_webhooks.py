"""Webhooks: managed through `/api/webhooks/`, called by other systems at `.../call`."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from executions.models import Execution, Flow, Webhook

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]

ECHO = """
def handler(system, this):
    this.save(output_value={'got': this.get('input_value')})
"""
SHAPED = """
def handler(system, this):
    inputs = this.get('input_value')
    this.save(output_value={'webhook_response': {
        'status': 418, 'headers': {'X-Teapot': 'yes'}, 'json': {'path': inputs['path']},
    }})
"""
TEXT = """
def handler(system, this):
    this.save(output_value={'webhook_response': {'body': 'plain words'}})
"""
FAILING = """
def handler(system, this):
    raise ValueError('bad order')
"""
SLEEPER = """
import time

def handler(system, this):
    time.sleep(60)
"""


def _webhook(api: APIClient, make_flow, source: str = ECHO, **fields) -> tuple[str, str]:
    make_flow("hooked", source)
    answer = api.post(
        "/api/webhooks/", {"name": "orders", "flow": "hooked", "enabled": True, **fields},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    return "/api/webhooks/orders/call", answer.json()["key"]


def test_a_new_webhook_starts_disabled_and_shows_its_key_only_once(api, make_flow, admin):
    make_flow("hooked", ECHO)

    created = api.post("/api/webhooks/", {"name": "orders", "flow": "hooked"}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert body["enabled"] is False
    assert body["mode"] == "productive"
    assert body["user"] == "root"
    assert body["call_url"].endswith("/api/webhooks/orders/call")
    key = body["key"]
    assert len(key) >= 32
    stored = Webhook.objects.get(name="orders")
    assert key not in stored.key_hash and len(stored.key_hash) == 64
    shown = api.get("/api/webhooks/orders/").json()
    assert "key" not in shown and "key_hash" not in shown
    assert "key" not in api.get("/api/webhooks/").json()["results"][0]


def test_rotating_the_key_makes_the_old_key_fail(api, caller, make_flow):
    url, old = _webhook(api, make_flow)

    rotated = api.post("/api/webhooks/orders/rotate-key/")

    assert rotated.status_code == 200
    new = rotated.json()["key"]
    assert new != old
    assert caller.post(f"{url}?key={old}&async=1").status_code == 403
    assert caller.post(f"{url}?key={new}&async=1").status_code == 202


def test_a_synchronous_call_answers_with_the_ended_execution(api, caller, make_flow):
    url, key = _webhook(api, make_flow)

    answer = caller.post(
        f"{url}/shop/42?key={key}&tag=a&tag=b&x=1", {"order": 7}, format="json",
        HTTP_X_CUSTOM="hello", HTTP_AUTHORIZATION="Bearer secret",
    )

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "ENDED_SUCCESS"
    got = body["output_value"]["got"]
    assert got["method"] == "POST"
    assert got["path"] == "shop/42"
    assert got["query"] == {"tag": ["a", "b"], "x": "1"}
    assert got["json"] == {"order": 7}
    assert "data" not in got
    assert got["headers"]["X-Custom"] == "hello"
    assert "Authorization" not in got["headers"]
    execution = Execution.objects.get(pk=body["id"])
    assert execution.trigger == Execution.Trigger.WEBHOOK
    assert execution.trigger_ref == "orders"
    assert execution.user is not None and execution.user.username == "root"
    assert key not in str(execution.input_value)


@pytest.mark.parametrize("where", ["query", "header", "json"])
def test_the_key_is_accepted_in_the_query_a_header_or_the_json_body(api, caller, make_flow, where):
    url, key = _webhook(api, make_flow)
    if where == "query":
        answer = caller.put(f"{url}?key={key}", {"a": 1}, format="json")
    elif where == "header":
        answer = caller.put(url, {"a": 1}, format="json", HTTP_X_WEBHOOK_KEY=key)
    else:
        answer = caller.put(url, {"a": 1, "key": key}, format="json")

    assert answer.status_code == 200, answer.content
    got = answer.json()["output_value"]["got"]
    assert got["method"] == "PUT"
    assert got["json"] == {"a": 1}
    assert "X-Webhook-Key" not in got["headers"]
    assert "key" not in got["query"]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_every_method_reaches_the_flow_and_a_text_body_comes_as_data(api, caller, make_flow, method):
    url, key = _webhook(api, make_flow)

    answer = getattr(caller, method)(
        f"{url}?key={key}", "some text" if method != "get" else None, content_type="text/plain"
    )

    assert answer.status_code == 200, answer.content
    got = answer.json()["output_value"]["got"]
    assert got["method"] == method.upper()
    assert got["path"] == ""
    assert got["data"] == ("some text" if method != "get" else "")


def test_an_async_call_answers_202_with_the_id_and_url_at_once(api, caller, make_flow):
    url, key = _webhook(api, make_flow, SLEEPER)

    answer = caller.post(f"{url}?key={key}&async=1")

    assert answer.status_code == 202
    body = answer.json()
    assert body["url"].endswith(f"/api/executions/{body['id']}/")
    assert api.get(body["url"]).json()["status"] in ("PENDING", "RUNNING")
    api.post(f"/api/executions/{body['id']}/cancel/")


def test_a_call_still_running_after_the_wait_answers_202(api, caller, make_flow, settings):
    settings.AUTOMATION = {**settings.AUTOMATION, "WEBHOOK_WAIT_SECONDS": 0.5}
    url, key = _webhook(api, make_flow, SLEEPER)

    answer = caller.post(url, HTTP_X_WEBHOOK_KEY=key)

    assert answer.status_code == 202
    assert answer.json()["id"]
    api.post(f"/api/executions/{answer.json()['id']}/cancel/")


def test_a_flow_shapes_its_own_answer(api, caller, make_flow):
    url, key = _webhook(api, make_flow, SHAPED)

    answer = caller.get(f"{url}/a/b?key={key}")

    assert answer.status_code == 418
    assert answer["X-Teapot"] == "yes"
    assert answer.json() == {"path": "a/b"}


def test_a_flow_can_answer_with_plain_text(api, caller, make_flow):
    url, key = _webhook(api, make_flow, TEXT)

    answer = caller.get(f"{url}?key={key}")

    assert answer.status_code == 200
    assert answer.content == b"plain words"
    assert answer["Content-Type"].startswith("text/plain")


def test_a_flow_that_fails_answers_500_with_the_execution(api, caller, make_flow):
    url, key = _webhook(api, make_flow, FAILING)

    answer = caller.post(url, {"key": key}, format="json")

    assert answer.status_code == 500
    assert answer.json()["status"] == "ENDED_ERROR"
    assert "bad order" in answer.json()["message"]


def test_a_cancelled_execution_answers_500(api, caller, make_flow):
    url, key = _webhook(api, make_flow, SLEEPER)

    def cancel_when_running() -> None:
        try:
            running = wait_until(
                lambda: Execution.objects.filter(trigger_ref="orders", status="RUNNING").first(),
                20,
            )
            api.post(f"/api/executions/{running.pk}/cancel/")
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=cancel_when_running)
    thread.start()
    try:
        answer = caller.post(url, HTTP_X_WEBHOOK_KEY=key)
    finally:
        thread.join(timeout=30)

    assert answer.status_code == 500
    assert answer.json()["status"] == "ENDED_CANCELLED"


def test_refusals_are_json_403_404_413_and_400(api, caller, make_flow, settings):
    url, key = _webhook(api, make_flow)

    wrong = caller.post(f"{url}?key=nope")
    assert wrong.status_code == 403 and wrong.json()["key"] == ["wrong key"]
    missing = caller.post(url)
    assert missing.status_code == 403 and "key" in missing.json()
    unknown = caller.post(f"/api/webhooks/nobody/call?key={key}")
    assert unknown.status_code == 404 and unknown.json()["detail"]
    bad_json = caller.post(f"{url}?key={key}", "{not json", content_type="application/json")
    assert bad_json.status_code == 400 and "invalid JSON" in bad_json.json()["body"][0]
    settings.AUTOMATION = {**settings.AUTOMATION, "WEBHOOK_MAX_BODY_BYTES": 100}
    big = caller.post(f"{url}?key={key}", "x" * 101, content_type="text/plain")
    assert big.status_code == 413 and "100 bytes" in big.json()["detail"]
    assert caller.post(f"{url}?key={key}&async=1", "x" * 100, content_type="text/plain").status_code == 202
    api.patch("/api/webhooks/orders/", {"enabled": False}, format="json")
    disabled = caller.post(f"{url}?key={key}")
    assert disabled.status_code == 404
    assert Execution.objects.count() == 1  # only the call within the limit started one


def test_managing_webhooks_needs_a_user_but_calling_them_does_not(caller):
    assert caller.get("/api/webhooks/").status_code == 401
    assert caller.post("/api/webhooks/", {"name": "x"}, format="json").status_code == 401
    assert caller.get("/api/webhooks/nobody/call").status_code == 404


def test_webhook_records_are_looked_up_by_name_and_validated(api, make_flow):
    make_flow("hooked", ECHO)
    assert api.post("/api/webhooks/", {"name": "a", "flow": "nope"}, format="json").json()[
        "flow"
    ]
    assert "name" in api.post("/api/webhooks/", {"name": "a/b", "flow": "hooked"},
                              format="json").json()
    assert api.post("/api/webhooks/", {"name": "a", "flow": "hooked", "mode": "dev"},
                    format="json").json()["mode"]
    api.post("/api/webhooks/", {"name": "a", "flow": "hooked"}, format="json")
    assert api.post("/api/webhooks/", {"name": "a", "flow": "hooked"}, format="json").json()[
        "name"
    ]
    changed = api.patch("/api/webhooks/a/", {"mode": "development"}, format="json")
    assert changed.status_code == 200 and changed.json()["mode"] == "development"
    assert api.delete("/api/webhooks/a/").status_code == 204
    assert api.get("/api/webhooks/a/").status_code == 404


def test_a_webhook_acts_with_its_owners_current_rights(api, caller, make_flow, admin):
    url, key = _webhook(api, make_flow)
    assert caller.post(f"{url}?key={key}", {}, format="json").status_code == 200

    admin.is_active = False
    admin.save()
    answer = caller.post(f"{url}?key={key}", {}, format="json")
    assert answer.status_code == 403
    assert answer.json()["detail"] == "webhook 'orders' is orphaned: its owner 'root' is deactivated"

    admin.is_active, admin.is_superuser = True, False  # active, but may no longer Run
    admin.save()
    answer = caller.post(f"{url}?key={key}", {}, format="json")
    assert answer.status_code == 403
    assert "may no longer start productive executions" in answer.json()["detail"]

    admin.delete()
    answer = caller.post(f"{url}?key={key}", {}, format="json")
    assert answer.status_code == 403
    assert "it has no owner" in answer.json()["detail"]
    assert Execution.objects.filter(trigger=Execution.Trigger.WEBHOOK).count() == 1  # the first call only


def test_the_admin_shows_an_orphaned_webhook(api, make_flow, admin, client):
    _webhook(api, make_flow)
    client.force_login(admin)
    assert "orphaned" not in client.get("/admin/executions/webhook/").content.decode()
    Webhook.objects.filter(name="orders").update(user=None)
    page = client.get("/admin/executions/webhook/").content.decode()
    assert "orphaned: it has no owner" in page


def test_a_synchronous_call_on_a_queue_no_worker_serves_answers_202_within_seconds(api, caller, make_flow):
    url, key = _webhook(api, make_flow)
    Flow.objects.filter(name="hooked").update(queue="nowhere")
    started = time.monotonic()
    answer = caller.post(f"{url}?key={key}", {}, format="json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["status"] == "PENDING"
    assert "no worker serves queue nowhere.productive" in answer.json()["warning"]
    assert time.monotonic() - started < 10
