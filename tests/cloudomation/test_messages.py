"""Messages and forms the way Cloudomation's flows write them: `system.message(...,
message_type=...)`, messages without a form, password elements, the form keys of the
documented forms, and the INPUT task. Answers go through the API, as a user gives them."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from rest_framework.test import APIClient

from executions import engine
from executions.models import Execution, ExecutionLog, Message

from ..workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

PASSWORD = "S3cret pass!"


def _open_message(execution: Execution, timeout: float = 20) -> Message:
    return wait_until(
        lambda: Message.objects.filter(
            execution__in=Execution.objects.filter(pk=execution.pk)
            | Execution.objects.filter(root=execution),
            status="open",
        ).first(),
        timeout=timeout,
    )


def _ended(execution: Execution, timeout: float = 30) -> Execution:
    ended = engine.wait_for([execution.pk], timeout=timeout)[0]
    assert ended.is_ended, f"still {ended.status}"
    return ended


def _respond(api: APIClient, message: Message, response: dict) -> dict:
    answer = api.post(f"/api/messages/{message.pk}/respond/", {"response": response}, format="json")
    assert answer.status_code == 200, answer.json()
    return answer.json()


def test_message_types_are_stored_and_shown_in_the_api_and_the_admin(make_flow, run_flow, api, client, admin):
    make_flow("notify", """
        def handler(system: flow_api.System, this: flow_api.Execution):
            system.message('Disk almost full', 'Only 5% left on /var', message_type='WARN')
            system.message(subject='Build ready', message_type='POPUP', body={
                'type': 'object',
                'properties': {'ok': {'element': 'submit', 'type': 'boolean', 'label': 'OK'}},
            })
            system.message(subject='Old style', type='popup')
            system.message('Deploy failed', message_type='ERROR')
            system.message('Just so you know')
            later = this.message('Heads up', 'no need to wait', message_type='warn', wait=False)
            return this.success(f"told; {later.get('message_type')} {later.get('status')}")
        """)
    ended = run_flow("notify")
    assert (ended.status, ended.message) == ("ENDED_SUCCESS", "told; WARN open")

    listed = api.get("/api/messages/", {"execution": ended.pk}).json()["results"]
    types = {m["subject"]: m["message_type"] for m in listed}
    assert types == {"Disk almost full": "WARN", "Build ready": "POPUP", "Old style": "POPUP",
                     "Deploy failed": "ERROR", "Just so you know": "INFO", "Heads up": "WARN"}
    warn = next(m for m in listed if m["subject"] == "Disk almost full")
    assert warn["message"] == "Only 5% left on /var"  # a text body is the message, not a form
    assert warn["body"]["properties"] == {}
    popups = api.get("/api/messages/", {"message_type": "POPUP"}).json()["results"]
    assert sorted(m["subject"] for m in popups) == ["Build ready", "Old style"]

    client.force_login(admin)
    page = client.get("/admin/executions/message/", {"message_type__exact": "WARN"})
    assert page.status_code == 200
    assert "Disk almost full" in page.content.decode() and "Build ready" not in page.content.decode()
    detail = client.get(f"/admin/executions/message/{warn['id']}/change/").content.decode()
    assert "WARN" in detail and "Only 5% left on /var" in detail


def test_an_unknown_message_type_fails_the_flow_naming_it(make_flow, run_flow):
    make_flow("bad-type", """
        def handler(system, this):
            system.message('Hi', message_type='SHOUT')
        """)
    ended = run_flow("bad-type")
    assert ended.status == "ENDED_ERROR"
    assert "message_type must be one of INFO, WARN, ERROR, POPUP, not 'SHOUT'" in ended.message
    assert "line 3" in ended.message


def test_a_message_without_a_form_waits_until_it_is_acknowledged(make_flow, api):
    make_flow("acknowledge", """
        def handler(system, this):
            answer = this.message('Maintenance', 'The database restarts at 22:00.')
            return {'answer': answer}
        """)
    execution = engine.start_execution(flow="acknowledge")
    message = _open_message(execution)
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status == "WAITING", 10)
    _respond(api, message, {})
    ended = _ended(execution)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"answer": {}}


CHANGE_PASSWORD = """
def handler(system, this):
    answer = this.message(
        subject='Change password',
        body={
            'type': 'object',
            'properties': {
                'user': {'label': 'User name', 'element': 'string', 'type': 'string', 'order': 1},
                'password': {'label': 'New password', 'element': 'password',
                             'type': 'string', 'order': 2},
            },
            'required': ['user', 'password'],
        },
    )
    this.log('changing the password of', user=answer['user'])
    return {'user': answer['user'], 'correct': answer['password'] == 'S3cret pass!',
            'length': len(answer['password'])}
"""


def _everything_shown(execution: Execution, message: Message, api: APIClient, client) -> str:
    """What users and the database show of the form and its flow."""
    logs = ExecutionLog.objects.filter(execution=execution)
    with connection.cursor() as cursor:
        cursor.execute("SELECT response::text, secret_response FROM executions_message "
                       "WHERE id = %s", [message.pk])
        columns = cursor.fetchone()
    return "\n".join([
        json.dumps(api.get(f"/api/messages/{message.pk}/").json()),
        json.dumps(api.get("/api/messages/").json()),
        json.dumps(api.get(f"/api/executions/{execution.pk}/").json()),
        json.dumps(api.get(f"/api/executions/{execution.pk}/logs/").json()),
        client.get(f"/admin/executions/message/{message.pk}/change/").content.decode(),
        client.get(f"/admin/executions/execution/{execution.pk}/change/").content.decode(),
        *(f"{entry.text} {json.dumps(entry.data)}" for entry in logs),
        *(str(c) for c in columns),
    ])


def test_a_password_answer_reaches_the_flow_and_is_masked_everywhere_else(make_flow, api, client, admin):
    make_flow("change-password", CHANGE_PASSWORD)
    execution = engine.start_execution(flow="change-password")
    message = _open_message(execution)
    client.force_login(admin)
    form = client.get(f"/admin/executions/message/{message.pk}/change/").content.decode()
    assert 'type="password"' in form

    answered = _respond(api, message, {"user": "ada", "password": PASSWORD})

    assert answered["response"] == {"user": "ada", "password": "********"}
    ended = _ended(execution)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"user": "ada", "correct": True, "length": len(PASSWORD)}
    shown = _everything_shown(ended, message, api, client)
    assert PASSWORD not in shown
    assert "********" in shown
    message.refresh_from_db()
    assert message.response == {"user": "ada", "password": "********"}
    assert message.secret_response == {}  # erased when the flow ended


def test_a_password_answer_reaches_a_flow_whose_wait_parked_and_was_replayed(make_flow, api, tmp_path):
    # Its wait parks after 0.5 s: the answer resumes the flow, which re-runs its handler
    # up to the wait and must find the clear password again (still encrypted until its end).
    make_flow("change-password", CHANGE_PASSWORD, queue="parking")
    with running_worker(queues=["parking.productive"], concurrency=1, name="park-password",
                        tmp_dir=tmp_path, extra_env={"AUTOMATION_PARK_AFTER_SECONDS": "0.5"}):
        execution = engine.start_execution(flow="change-password")
        message = _open_message(execution)
        wait_until(lambda: Execution.objects.filter(pk=execution.pk, parked=True).exists(), 20)
        _respond(api, message, {"user": "ada", "password": PASSWORD})
        with connection.cursor() as cursor:  # kept for the resumed run, encrypted
            cursor.execute("SELECT secret_response FROM executions_message WHERE id = %s",
                           [message.pk])
            stored = cursor.fetchone()[0]
        assert stored and PASSWORD not in stored
        ended = _ended(execution, timeout=60)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.resumes == 1
    assert ended.output_value == {"user": "ada", "correct": True, "length": len(PASSWORD)}
    message.refresh_from_db()
    assert message.secret_response == {}


def test_an_unread_password_answer_is_encrypted_and_erased_when_its_execution_is_cancelled(
        make_flow, api):
    make_flow("asks-later", """
        def handler(system, this):
            system.message(subject='PIN', body={
                'properties': {'pin': {'label': 'PIN', 'element': 'password'}}})
            this.sleep(60)
        """)
    execution = engine.start_execution(flow="asks-later")
    message = _open_message(execution)
    _respond(api, message, {"pin": PASSWORD})
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_response FROM executions_message WHERE id = %s", [message.pk])
        stored = cursor.fetchone()[0]
    assert PASSWORD not in stored
    message.refresh_from_db()
    assert message.secret_response == {"pin": PASSWORD}  # what only the flow may read

    engine.cancel_execution(execution.pk)
    assert engine.wait_stopped([execution.pk])

    message.refresh_from_db()
    assert message.secret_response == {}
    assert message.response == {"pin": "********"}


def test_a_password_answered_in_the_admin_is_masked_too(make_flow, client, admin):
    make_flow("change-password", CHANGE_PASSWORD)
    execution = engine.start_execution(flow="change-password")
    message = _open_message(execution)
    client.force_login(admin)
    posted = client.post(f"/admin/executions/message/{message.pk}/answer/",
                         {"user": "bob", "password": PASSWORD, "_submit": ""})
    assert posted.status_code == 302
    ended = _ended(execution)
    assert ended.output_value == {"user": "bob", "correct": True, "length": len(PASSWORD)}
    page = client.get(f"/admin/executions/message/{message.pk}/change/").content.decode()
    assert PASSWORD not in page and "********" in page


def test_a_required_password_left_empty_is_refused_naming_the_field(make_flow, api):
    make_flow("change-password", CHANGE_PASSWORD)
    execution = engine.start_execution(flow="change-password")
    message = _open_message(execution)
    refused = api.post(f"/api/messages/{message.pk}/respond/",
                       {"response": {"user": "ada", "password": "   "}}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"response.password": ["New password is required"]}


# The form of Cloudomation's "Delayed" flow: example, description, format: time, defaults.
DELAYED = """
def handler(system, this):
    answer = this.message(
        subject='Delayed execution',
        body={
            'type': 'object',
            'properties': {
                'intro': {'element': 'markdown', 'order': 1,
                          'description': 'Pick a flow and a time of day.'},
                'flow_name': {'label': 'Flow', 'element': 'string', 'type': 'string',
                              'example': 'my-flow', 'description': 'The flow to start',
                              'order': 2},
                'start': {'label': 'Start at', 'element': 'time', 'type': 'string',
                          'format': 'time', 'order': 3},
                'tries': {'label': 'Tries', 'element': 'number', 'type': 'number',
                          'default': 3, 'order': 4},
                'go': {'label': 'Schedule', 'element': 'submit', 'type': 'boolean', 'order': 5},
            },
            'required': ['flow_name', 'start'],
        },
    )
    return {'answer': answer}
"""


def test_the_documented_form_keys_are_rendered_and_validated(make_flow, api, client, admin):
    make_flow("delayed", DELAYED)
    execution = engine.start_execution(flow="delayed")
    message = _open_message(execution)
    client.force_login(admin)
    page = client.get(f"/admin/executions/message/{message.pk}/change/").content.decode()
    assert "Pick a flow and a time of day." in page  # markdown's description is its text
    assert 'placeholder="my-flow"' in page and "The flow to start" in page
    assert 'type="time"' in page and 'value="3"' in page
    assert '<button type="submit" class="button default" name="_submit" value="go">Schedule' in page

    refused = api.post(f"/api/messages/{message.pk}/respond/",
                       {"response": {"flow_name": "x", "start": "half past two"}}, format="json")
    assert refused.status_code == 400
    assert "response.start" in refused.json()
    missing = api.post(f"/api/messages/{message.pk}/respond/",
                       {"response": {"start": "14:30:00+0100"}}, format="json")
    assert missing.json() == {"response.flow_name": ["Flow is required"]}

    _respond(api, message, {"flow_name": "nightly", "start": "14:30:00+01:00", "go": True})
    ended = _ended(execution)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"answer": {"flow_name": "nightly", "start": "14:30:00+01:00",
                                             "tries": 3, "go": True}}


def test_an_input_task_asks_a_person_and_its_answer_is_the_response(make_flow, api):
    make_flow("ask-name", """
        def handler(system, this):
            task = this.connect(connector_type='INPUT', request='What is your name?')
            old = this.task('INPUT', request='And your quest?', name='quest')
            return {'name': task.get('output_value')['response'],
                    'quest': old.get('output_value')['response'],
                    'types': [task.get('type'), old.get('name')]}
        """)
    execution = engine.start_execution(flow="ask-name")
    first = _open_message(execution)
    assert first.body["properties"]["response"]["label"] == "What is your name?"
    task = Execution.objects.get(pk=first.execution_id or 0)
    assert task.parent_id == execution.pk
    wait_until(lambda: Execution.objects.get(pk=task.pk).status == "WAITING", 10)
    _respond(api, first, {"response": "Arthur"})
    second = wait_until(lambda: Message.objects.filter(
        execution__parent=execution, status="open").exclude(pk=first.pk).first(), 20)
    _respond(api, second, {"response": "To seek the Holy Grail"})
    ended = _ended(execution)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"name": "Arthur", "quest": "To seek the Holy Grail",
                                  "types": ["SCRIPT", "quest"]}


@pytest.mark.parametrize(("call", "says"), [
    ("this.connect(connector_type='INPUT')", "INPUT: request= (the question, a text) is required"),
    ("this.task('INPUT', request='Name?', colour='red')", "INPUT: unknown input 'colour'"),
    ("this.task('INPUT', request='PIN?', type='password')", "INPUT: type 'password' is not available"),
])
def test_a_wrong_input_task_fails_naming_the_input(make_flow, run_flow, call, says):
    make_flow("bad-input", f"def handler(system, this):\n    {call}\n")
    ended = run_flow("bad-input")
    assert ended.status == "ENDED_ERROR"
    assert says in ended.message and "line 2" in ended.message
