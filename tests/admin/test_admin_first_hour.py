"""The admin for a new user, through Django's test client: the dashboard never waits for a
broadcast to the workers, the sidebar shows the engine's own tables, the execution list and
page read well, a schedule can be fired by hand and shows its firings."""

from __future__ import annotations

from typing import Any

import pytest
from celery import current_app
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from executions.engine.queues import celery_queue
from executions.models import Execution, ExecutionLog, Flow, Schedule

SCRIPT = "def handler(system, this):\n    return this.success('ok')\n"


@pytest.fixture
def client(admin_client_user: tuple[Client, User]) -> Client:
    return admin_client_user[0]


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_shows_live_workers_without_asking_them(
    worker: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def no_broadcast(*args: Any, **kwargs: Any) -> None:
        asked.append(str(args[:1]))
        raise AssertionError("the dashboard broadcast to the workers")

    # Celery's control (inspect, ping, ...) all go through broadcast: disabled here, for
    # the page only (the worker fixture asks its worker after the test).
    with monkeypatch.context() as patched:
        patched.setattr(current_app.control, "broadcast", no_broadcast)
        response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    html = response.content.decode()
    card = html[html.index('id="dash-workers"'):]
    card = card[:card.index("</section>")]
    # The test worker reports itself every heartbeat: its queues are listed.
    assert celery_queue("", "development") in card
    assert "could not be asked" not in card
    assert asked == []


def test_knox_tokens_are_out_of_the_sidebar_and_under_advanced(client: Client) -> None:
    html = client.get(reverse("admin:index")).content.decode()
    tokens = reverse("admin:knox_authtoken_changelist")
    advanced = html[html.index('id="dash-advanced"'):]
    assert html.count(tokens) == 1  # the card's link, not the app list or the sidebar
    assert "Auth tokens" not in html
    assert tokens in advanced[:advanced.index("</section>")]
    page = client.get(tokens)
    assert page.status_code == 200  # still reachable
    crumbs = page.content.decode().split('class="breadcrumbs"')[1].split("</div>")[0]
    assert "Advanced" in crumbs and "/admin/knox/" not in crumbs  # knox's app page is a 404
    assert "django_celery_beat" not in html and "Periodic tasks" not in html


def test_staff_without_superuser_see_no_advanced_card(db: None) -> None:
    staff = User.objects.create_user("bob", password="pw-bob-123", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_execution"))
    client = Client()
    client.force_login(staff)
    html = client.get(reverse("admin:index")).content.decode()
    assert 'id="automation-dashboard"' in html and 'id="dash-advanced"' not in html


def test_the_execution_list_has_flow_status_duration_started_and_trigger(client: Client) -> None:
    Execution.objects.create(name="nightly", queue="default", status="ENDED_SUCCESS")
    html = client.get(reverse("admin:executions_execution_changelist")).content.decode()
    table = html[html.index('id="result_list"'):]
    head = table[:table.index("</thead>")]
    for column in ("Flow", "Status", "Duration", "Started", "Trigger"):
        assert f">{column}<" in head, column


def test_an_ended_execution_without_log_says_no_log_entries_not_yet(client: Client) -> None:
    ended = Execution.objects.create(name="quiet", queue="default", status="ENDED_SUCCESS")
    Execution.objects.filter(pk=ended.pk).update(ended_at=ended.created_at)
    html = client.get(reverse("admin:executions_execution_change", args=[ended.pk])).content.decode()
    assert "No log entries." in html and "No log entries yet." not in html
    running = Execution.objects.create(name="busy", queue="default", status="RUNNING")
    html = client.get(reverse("admin:executions_execution_change", args=[running.pk])).content.decode()
    assert "No log entries yet." in html


def test_a_long_log_entry_is_folded_behind_show_all(client: Client) -> None:
    execution = Execution.objects.create(name="chatty", queue="default", status="RUNNING")
    ExecutionLog.objects.create(execution=execution, text="short line")
    ExecutionLog.objects.create(execution=execution, text="Traceback (most recent call last):\n" + "x" * 900)
    html = client.get(reverse("admin:executions_execution_change", args=[execution.pk])).content.decode()
    assert html.count('<details class="log-fold">') == 1
    fold = html[html.index('<details class="log-fold">'):]
    assert "<summary>Traceback (most recent call last):… " in fold and "show all" in fold
    assert "x" * 900 in fold[:fold.index("</details>")]
    live = client.get(reverse("admin:executions_execution_live", args=[execution.pk])).json()
    assert [bool(e["summary"]) for e in live["logs"]] == [False, True]


def test_run_again_names_the_revision_it_runs(client: Client) -> None:
    flow = Flow.objects.create(name="evolving", script=SCRIPT)
    old = Execution.objects.create(name="evolving", flow=flow, flow_revision=1, queue="default",
                                   status="ENDED_SUCCESS", mode="development")
    flow.script = SCRIPT.replace("'ok'", "'newer'")
    flow.save()
    html = client.get(reverse("admin:executions_execution_change", args=[old.pk])).content.decode()
    assert ">Run again (revision 2)<" in html and "(this run was revision 1)" in html
    response = client.post(reverse("admin:executions_execution_rerun", args=[old.pk]), follow=True)
    assert "(revision 2), a new run of execution" in response.content.decode()


def test_run_now_fires_a_schedule_and_its_page_lists_the_firing(client: Client) -> None:
    flow = Flow.objects.create(name="report", script=SCRIPT)
    schedule = Schedule.objects.create(name="hourly report", flow=flow, cron="0 * * * *")
    page = client.get(reverse("admin:executions_schedule_change", args=[schedule.pk])).content.decode()
    assert "Run now" in page and "not fired yet" in page
    response = client.post(reverse("admin:executions_schedule_run_now", args=[schedule.pk]))
    fired = Execution.objects.get(schedule=schedule, type=Execution.Type.SCHEDULE)
    assert response["Location"] == reverse("admin:executions_execution_change", args=[fired.pk])
    page = client.get(reverse("admin:executions_schedule_change", args=[schedule.pk])).content.decode()
    history = page[page.index('class="firing-history"'):]
    assert reverse("admin:executions_execution_change", args=[fired.pk]) in history
    assert client.get(reverse("admin:executions_schedule_run_now", args=[schedule.pk])).status_code == 405
