"""More of Cloudomation's execution methods: `pause()` and resuming (by `run_async()` or
the API), `webhook_html_response(html)`, `archive()`, and `system.get_own_client()` (this
installation, read-only)."""

from __future__ import annotations

import time

import pytest

from executions import engine
from executions.models import Execution, ExecutionLog

from ..workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

PAUSES_ITSELF = """
def handler(system: flow_api.System, this: flow_api.Execution):
    this.log('before pause')
    this.pause()
    this.log('after pause')
    return {'status_after': this.load('status')}
"""


def _logs(execution: Execution) -> list[str]:
    return list(ExecutionLog.objects.filter(execution=execution).order_by("id")
                .values_list("text", flat=True))


def _status(execution: Execution) -> str:
    return Execution.objects.values_list("status", flat=True).get(pk=execution.pk)


def test_a_flow_that_pauses_itself_stays_paused_until_resumed_through_the_api(make_flow, api):
    make_flow("pauser", PAUSES_ITSELF)
    execution = engine.start_execution(flow="pauser")
    wait_until(lambda: _status(execution) == "PAUSED", 20)
    time.sleep(1)
    assert _status(execution) == "PAUSED"
    assert _logs(execution) == ["before pause"]
    shown = api.get(f"/api/executions/{execution.pk}/").json()
    assert shown["status"] == "PAUSED"

    resumed = api.post(f"/api/executions/{execution.pk}/resume/")

    assert resumed.status_code == 200, resumed.json()
    ended = engine.wait_for([execution.pk], timeout=20)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"status_after": "RUNNING"}
    assert _logs(ended) == ["before pause", "after pause"]


def test_the_admin_shows_a_paused_execution_with_a_resume_button_that_resumes_it(
        make_flow, client, admin):
    make_flow("pauser", PAUSES_ITSELF)
    execution = engine.start_execution(flow="pauser")
    wait_until(lambda: _status(execution) == "PAUSED", 20)
    client.force_login(admin)
    page = client.get(f"/admin/executions/execution/{execution.pk}/change/").content.decode()
    assert f"/admin/executions/execution/{execution.pk}/resume/" in page
    assert f"/admin/executions/execution/{execution.pk}/pause/" not in page

    assert client.post(f"/admin/executions/execution/{execution.pk}/resume/").status_code == 302

    ended = engine.wait_for([execution.pk], timeout=20)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert _logs(ended) == ["before pause", "after pause"]


def test_an_execution_paused_while_it_waits_for_a_form_holds_after_the_answer(make_flow, api):
    from executions.models import Message

    make_flow("asker", """
        def handler(system, this):
            name = this.message('Who?', request='Name?')['string']
            this.log('got', name=name)
            return {'name': name}
        """)
    execution = engine.start_execution(flow="asker")
    message = wait_until(lambda: Message.objects.filter(execution=execution, status="open").first(), 20)
    wait_until(lambda: _status(execution) == "WAITING", 10)
    assert api.post(f"/api/executions/{execution.pk}/pause/").status_code == 200

    answered = api.post(f"/api/messages/{message.pk}/respond/", {"response": {"string": "Ada"}},
                        format="json")
    assert answered.status_code == 200
    time.sleep(1.5)
    assert _status(execution) == "PAUSED"
    assert _logs(execution) == []  # the wait is over, the flow holds at its next call

    assert api.post(f"/api/executions/{execution.pk}/resume/").status_code == 200
    ended = engine.wait_for([execution.pk], timeout=20)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"name": "Ada"} and _logs(ended) == ["got"]


COUNTER = """
def handler(system, this):
    for i in range(1, 40):
        this.set_output('count', i)
        this.sleep(0.1)
    return this.success('counted')
"""
PAUSES_CHILD = """
def handler(system, this):
    child = this.flow('counter', wait=False)
    while not (child.load('output_value') or {}).get('count'):
        this.sleep(0.1)
    child.pause()
    status, is_paused = child.load('status', 'is_paused')
    this.sleep(1)
    first = child.load('output_value')['count']
    this.sleep(1)
    second = child.load('output_value')['count']
    child.run_async()
    child.wait()
    return {'paused': [status, is_paused], 'held': first == second,
            'ended': child.load('status'), 'count': child.load('output_value')['count']}
"""


def test_a_paused_child_holds_at_its_next_call_and_run_async_resumes_it(make_flow, run_flow):
    make_flow("counter", COUNTER)
    make_flow("pauses-child", PAUSES_CHILD)
    ended = run_flow("pauses-child", timeout=60)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"paused": ["PAUSED", True], "held": True,
                                  "ended": "ENDED_SUCCESS", "count": 39}


def test_a_paused_execution_can_be_cancelled(make_flow, api):
    make_flow("pauser", PAUSES_ITSELF)
    execution = engine.start_execution(flow="pauser")
    wait_until(lambda: _status(execution) == "PAUSED", 20)
    assert api.post(f"/api/executions/{execution.pk}/cancel/").status_code == 200
    ended = engine.wait_for([execution.pk], timeout=20)[0]
    assert ended.status == "ENDED_CANCELLED"
    assert _logs(ended) == ["before pause"]


def test_pausing_or_resuming_an_execution_in_the_wrong_state_answers_409(make_flow, run_flow, api):
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n")
    ended = run_flow("quick")
    paused = api.post(f"/api/executions/{ended.pk}/pause/")
    assert paused.status_code == 409
    assert "only a running or waiting execution can be paused" in paused.json()["status"][0]
    resumed = api.post(f"/api/executions/{ended.pk}/resume/")
    assert resumed.status_code == 409
    assert "not PAUSED" in resumed.json()["status"][0]


def test_pausing_an_ended_child_fails_the_flow_naming_its_state(make_flow, run_flow):
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n")
    make_flow("late-pause", """
        def handler(system, this):
            child = this.flow('quick')
            child.pause()
        """)
    ended = run_flow("late-pause")
    assert ended.status == "ENDED_ERROR"
    assert "is ENDED_SUCCESS: only a running or waiting execution can be paused" in ended.message
    assert "line 4" in ended.message


def test_a_parked_wait_cannot_be_paused_and_says_why(make_flow, api, tmp_path):
    make_flow("asker", "def handler(system, this):\n    this.message('Who?', request='Name?')\n",
              queue="parking")
    with running_worker(queues=["parking.productive"], concurrency=1, name="park-pause",
                        tmp_dir=tmp_path, extra_env={"AUTOMATION_PARK_AFTER_SECONDS": "0.5"}):
        execution = engine.start_execution(flow="asker")
        wait_until(lambda: Execution.objects.filter(pk=execution.pk, parked=True).exists(), 20)
        refused = api.post(f"/api/executions/{execution.pk}/pause/")
        assert refused.status_code == 409
        assert "is parked (its wait holds no process)" in refused.json()["status"][0]
        assert _status(execution) == "WAITING"
        engine.cancel_execution(execution.pk)


TODO = """
def handler(system, this):
    inputs = this.get('input_value')
    items = ''.join(f'<li>{item}</li>' for item in inputs['json']['items'])
    this.webhook_html_response(f'<html><body><h1>Todo</h1><ul>{items}</ul></body></html>')
    return this.success('rendered')
"""


def test_webhook_html_response_answers_the_synchronous_call_with_that_html(make_flow, api):
    from rest_framework.test import APIClient

    make_flow("todo", TODO)
    created = api.post("/api/webhooks/", {"name": "todo", "flow": "todo", "enabled": True},
                       format="json")
    assert created.status_code == 201, created.json()
    caller = APIClient()
    answer = caller.post(f"/api/webhooks/todo/call?key={created.json()['key']}",
                         {"items": ["milk", "bread"]}, format="json")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/html; charset=utf-8"
    assert answer["Content-Security-Policy"] == "sandbox allow-forms"
    assert answer.content.decode() == (
        "<html><body><h1>Todo</h1><ul><li>milk</li><li>bread</li></ul></body></html>")


def test_webhook_html_response_takes_text_only(make_flow, run_flow):
    make_flow("bad-html", "def handler(system, this):\n    this.webhook_html_response({'a': 1})\n")
    ended = run_flow("bad-html")
    assert ended.status == "ENDED_ERROR"
    assert "webhook_html_response() takes the HTML as a str" in ended.message


def test_archive_is_accepted_and_changes_nothing(make_flow, run_flow, api):
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n")
    make_flow("archiver", """
        def handler(system, this):
            child = this.flow('quick')
            same = child.archive()
            return {'child': child.id, 'same': same is child, 'status': child.load('status')}
        """)
    ended = run_flow("archiver")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["same"] is True and ended.output_value["status"] == "ENDED_SUCCESS"
    shown = api.get(f"/api/executions/{ended.output_value['child']}/")
    assert shown.status_code == 200 and shown.json()["status"] == "ENDED_SUCCESS"


def test_get_own_client_is_this_installation_read_only(make_flow, run_flow):
    make_flow("client", """
        def handler(system: flow_api.System, this: flow_api.Execution):
            client = system.get_own_client()
            return {'name': client.get('name'), 'loaded': client.load('name'),
                    'env': system.get_env_name(), 'client_name': this.get('client_name'),
                    'savable': hasattr(client, 'save')}
        """)
    ended = run_flow("client")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"name": "default", "loaded": "default", "env": "default",
                                  "client_name": "default", "savable": False}
