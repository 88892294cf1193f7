"""Webhook and schedule pages, the Recurring/Daily buttons and the dashboard additions,
through Django's test client (no browser, no worker)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from executions import webhooks
from executions.models import Execution, Flow, Schedule, Webhook

pytestmark = pytest.mark.django_db

SCRIPT = "def handler(system, this):\n    return this.success('ok')\n"


@pytest.fixture
def client(admin_client_user: tuple[Client, User]) -> Client:
    return admin_client_user[0]


def test_a_new_webhook_shows_its_key_once_with_a_curl_example(client: Client) -> None:
    flow = Flow.objects.create(name="hooked", script=SCRIPT)
    response = client.post(reverse("admin:executions_webhook_add"), {
        "name": "github", "flow": flow.pk, "enabled": "on", "mode": "productive",
        "description": "",
    })
    assert response.status_code == 200
    html = response.content.decode()
    key = re.search(r'<code id="webhook-key">([^<]+)</code>', html).group(1)  # type: ignore[union-attr]
    webhook = Webhook.objects.get(name="github")
    assert webhooks.key_matches(webhook, key)
    assert "/api/webhooks/github/call" in html and f"X-Webhook-Key: {key}" in html
    assert "no-store" in response["Cache-Control"]
    page = client.get(reverse("admin:executions_webhook_change", args=[webhook.pk])).content.decode()
    assert key not in page
    assert "curl -X POST" in page and "$WEBHOOK_KEY" in page


def test_rotating_the_key_shows_the_new_one_and_the_old_stops_working(client: Client) -> None:
    webhook = Webhook.objects.create(name="hook", key_hash=webhooks.hash_key("old-key"))
    response = client.post(reverse("admin:executions_webhook_rotate_key", args=[webhook.pk]))
    assert response.status_code == 200
    key = re.search(r'<code id="webhook-key">([^<]+)</code>', response.content.decode()).group(1)  # type: ignore[union-attr]
    webhook.refresh_from_db()
    assert webhooks.key_matches(webhook, key) and not webhooks.key_matches(webhook, "old-key")


def test_a_schedule_page_shows_its_next_five_fire_times(client: Client) -> None:
    flow = Flow.objects.create(name="ticker", script=SCRIPT)
    schedule = Schedule.objects.create(name="every hour", flow=flow, cron="0 * * * *",
                                       timezone="Europe/Vienna")
    html = client.get(reverse("admin:executions_schedule_change", args=[schedule.pk])).content.decode()
    listed = re.search(r'<ol class="fire-times">(.*?)</ol>', html, re.S).group(1)  # type: ignore[union-attr]
    times = re.findall(r"<li>([^<]+)</li>", listed)
    assert len(times) == 5
    assert all(t.endswith(":00:00 CET") or t.endswith(":00:00 CEST") for t in times)


def test_the_recurring_button_says_so_when_the_helper_is_not_loaded(client: Client) -> None:
    flow = Flow.objects.create(name="nightly", script=SCRIPT)
    page = client.get(reverse("admin:executions_flow_change", args=[flow.pk])).content.decode()
    assert 'id="helper-recurring"' in page and 'id="helper-daily"' in page
    response = client.post(reverse("admin:executions_flow_helper", args=[flow.pk, "Recurring"]),
                           follow=True)
    assert response.status_code == 200
    assert "Cannot start the Recurring helper" in response.content.decode()
    assert not Execution.objects.filter(name="Recurring").exists()


def test_a_helper_that_is_not_offered_cannot_be_started(client: Client) -> None:
    flow = Flow.objects.create(name="nightly", script=SCRIPT)
    url = reverse("admin:executions_flow_helper", args=[flow.pk, "Anything"])
    assert client.post(url).status_code == 403


def test_the_dashboard_shows_failing_schedules_queue_depth_and_workers(client: Client) -> None:
    flow = Flow.objects.create(name="fails", script=SCRIPT)
    failing = Schedule.objects.create(name="broken nightly", flow=flow, interval_seconds=60)
    fine = Schedule.objects.create(name="fine nightly", flow=flow, interval_seconds=60)
    when = timezone.now() - timedelta(minutes=1)
    for schedule, status in ((failing, "ENDED_SUCCESS"), (failing, "ENDED_ERROR"),
                             (fine, "ENDED_ERROR"), (fine, "ENDED_SUCCESS")):
        Execution.objects.create(name=schedule.name, type=Execution.Type.SCHEDULE, schedule=schedule,
                                 queue="default", status=status, message=f"{status} here",
                                 created_at=when)
    html = client.get(reverse("admin:index")).content.decode()
    section = html[html.index('id="dash-failing-schedules"'):html.index('id="dash-queues"')]
    assert "broken nightly" in section and "fine nightly" not in section
    queues = html[html.index('id="dash-queues"'):html.index('id="dash-workers"')]
    assert queues.count("default.productive") == 1 and "default.development" in queues
    assert 'id="dash-workers"' in html


def test_queue_depth_counts_the_messages_waiting_on_the_broker(client: Client) -> None:
    Flow.objects.create(name="grouped", script=SCRIPT, queue="dashtest")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # A queue no worker serves, with one message at the lowest and two at a higher step.
    names = ["dashtest.productive", "dashtest.productive\x06\x163", "dashtest.productive\x06\x166"]
    try:
        broker.rpush(names[0], "a")
        broker.rpush(names[2], "b", "c")
        html = client.get(reverse("admin:index")).content.decode()
    finally:
        broker.delete(*names)
        broker.close()
    queues = html[html.index('id="dash-queues"'):html.index('id="dash-workers"')]
    assert re.search(r"dashtest\.productive</a> <b>3</b>", queues), queues
    assert re.search(r"dashtest\.development</a> <b>0</b>", queues), queues


def test_the_helper_buttons_need_the_try_or_run_permission(db: None) -> None:
    from django.contrib.auth.models import Permission

    flow = Flow.objects.create(name="nightly", script=SCRIPT)
    user = User.objects.create_user("viewer", password="pw-view-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_flow"))
    viewer = Client()
    viewer.force_login(user)
    page = viewer.get(reverse("admin:executions_flow_change", args=[flow.pk])).content.decode()
    assert 'id="helper-recurring"' not in page
    url = reverse("admin:executions_flow_helper", args=[flow.pk, "Recurring"])
    assert viewer.post(url).status_code == 403
    assert not Execution.objects.exists()
