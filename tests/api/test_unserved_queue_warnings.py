"""Saving a flow, schedule or webhook whose queue no live worker serves answers with a
warning (API: a `warning` field; admin: a warning message), from the workers' heartbeat
reports; with a worker serving it there is none."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from executions.models import Flow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

NOOP = "def handler(system, this):\n    return None\n"
UNSERVED = "no live worker serves queue nowhere.productive or nowhere.development"


def test_a_flow_on_a_queue_nobody_serves_is_saved_with_a_warning(api: Any) -> None:
    created = api.post("/api/flows/", {"name": "lonely", "script": NOOP, "queue": "nowhere"},
                       format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["warning"].startswith(UNSERVED)
    assert "will wait PENDING" in created.json()["warning"]
    changed = api.patch("/api/flows/lonely/", {"description": "still alone"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["warning"].startswith(UNSERVED)
    assert "warning" not in api.get("/api/flows/lonely/").json()  # only a save's answer
    served = api.patch("/api/flows/lonely/", {"queue": ""}, format="json")  # the default group
    assert served.status_code == 200
    assert "warning" not in served.json()


def test_a_schedule_and_a_webhook_warn_about_their_flows_queue_in_their_mode(api: Any) -> None:
    Flow.objects.create(name="far", script=NOOP, queue="nowhere")
    schedule = api.post("/api/schedules/", {
        "name": "nightly", "flow": "far", "interval_seconds": 3600, "mode": "productive",
    }, format="json")
    assert schedule.status_code == 201, schedule.json()
    assert schedule.json()["warning"].startswith("no live worker serves queue nowhere.productive:")
    webhook = api.post("/api/webhooks/", {"name": "far-hook", "flow": "far", "enabled": True,
                                          "mode": "development"}, format="json")
    assert webhook.status_code == 201, webhook.json()
    assert webhook.json()["warning"].startswith("no live worker serves queue nowhere.development:")
    assert webhook.json()["key"]
    disabled = api.patch("/api/webhooks/far-hook/", {"enabled": False}, format="json")
    assert "warning" not in disabled.json()  # a disabled webhook starts nothing


def test_a_flow_on_a_served_queue_has_no_warning(api: Any) -> None:
    created = api.post("/api/flows/", {"name": "served", "script": NOOP}, format="json")
    assert created.status_code == 201
    assert "warning" not in created.json()


@pytest.fixture
def admin_client(admin: Any) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def test_the_admin_warns_when_a_saved_flow_or_webhook_has_no_worker(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:executions_flow_add"), {
        "name": "lonely", "script": NOOP, "description": "", "enabled": "on", "timeout": "",
        "queue": "nowhere",
    }, follow=True)
    assert response.status_code == 200
    shown = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert any(tag == "warning" and UNSERVED in text for tag, text in shown), shown
    assert UNSERVED in response.content.decode()

    flow = Flow.objects.get(name="lonely")
    response = admin_client.post(reverse("admin:executions_webhook_add"), {
        "name": "lonely-hook", "flow": flow.pk, "enabled": "on", "mode": "productive",
        "description": "",
    })
    assert response.status_code == 200  # the page that shows the new key once, and the warning
    assert "no live worker serves queue nowhere.productive:" in response.content.decode()


def test_the_admin_does_not_warn_for_a_served_flow(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:executions_flow_add"), {
        "name": "served", "script": NOOP, "description": "", "enabled": "on", "timeout": "",
        "queue": "",
    }, follow=True)
    assert response.status_code == 200
    assert "no live worker serves" not in response.content.decode()
