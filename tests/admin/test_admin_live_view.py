"""The execution page's live view answers what changed since the page's last poll, not
the whole record each time: a large output is sent once, a new log line arrives."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from executions import engine
from executions.models import Execution, Setting

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

# Plain time.sleep: the execution stays RUNNING (this.sleep would make it WAITING and back).
CHATTY = """
import time

def handler(system, this):
    this.set_output(big='x' * 1_000_000)
    this.log('first')
    while not system.setting('live-go').exists():
        time.sleep(0.1)
    this.log('second')
    while not system.setting('live-stop').exists():
        time.sleep(0.1)
    return {'done': True}
"""


@pytest.fixture
def admin_client(admin: Any) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def test_a_second_poll_with_nothing_new_is_small_and_a_new_log_line_arrives(
    make_flow: Any, admin_client: Client
) -> None:
    make_flow("chatty", CHATTY)
    execution = engine.start_execution(flow="chatty")
    wait_until(lambda: execution.logs.filter(text="first").exists(), timeout=30)
    url = reverse("admin:executions_execution_live", args=[execution.pk])

    first = admin_client.get(url)
    assert first.status_code == 200
    assert len(first.content) > 1_000_000  # the page's first poll without a version: all
    data = first.json()
    assert '"big"' in data["output_json"]
    assert [e["text"] for e in data["logs"]] == ["first"]
    after, version = data["logs"][-1]["id"], data["version"]

    again = admin_client.get(url, {"after": after, "version": version})
    assert again.status_code == 200
    assert len(again.content) < 400, again.content
    quiet = again.json()
    assert quiet["logs"] == [] and quiet["ended"] is False
    assert "output_json" not in quiet and "execution" not in quiet
    assert quiet["version"] == version

    Setting.objects.create(name="live-go", value=True)
    wait_until(lambda: execution.logs.filter(text="second").exists(), timeout=30)
    news = admin_client.get(url, {"after": after, "version": version}).json()
    assert [e["text"] for e in news["logs"]] == ["second"]
    assert "output_json" not in news  # the output did not change

    Setting.objects.create(name="live-stop", value=True)
    ended = engine.wait_for([execution.pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    last = admin_client.get(url, {"after": news["logs"][-1]["id"], "version": news["version"]}).json()
    assert last["ended"] is True
    assert last["execution"]["status"] == "ENDED_SUCCESS"
    assert '"done": true' in last["output_json"]


def test_the_page_carries_its_version_so_its_first_poll_is_small(
    make_flow: Any, admin_client: Client
) -> None:
    make_flow("chatty", CHATTY)
    execution = engine.start_execution(flow="chatty")
    wait_until(lambda: execution.logs.filter(text="first").exists(), timeout=30)
    page = admin_client.get(reverse("admin:executions_execution_change", args=[execution.pk]))
    html = page.content.decode()
    version = html.split('data-version="', 1)[1].split('"', 1)[0]
    after = html.split('data-last-log="', 1)[1].split('"', 1)[0]
    url = reverse("admin:executions_execution_live", args=[execution.pk])
    poll = admin_client.get(url, {"after": after, "version": version})
    assert len(poll.content) < 400, poll.content
    Setting.objects.create(name="live-go", value=True)
    Setting.objects.create(name="live-stop", value=True)
    assert engine.wait_for([execution.pk], timeout=30)[0].status == Execution.Status.ENDED_SUCCESS
