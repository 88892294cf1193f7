"""Message forms: a flow asks, a user answers through the API, the flow resumes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from executions import engine
from executions.models import Execution, Message

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

ASK_NAME = """
def handler(system, this):
    name = this.message('Who are you?', request='Name?')
    return this.success(f'hello {name["string"]}')
"""
ASK_FORM = """
def handler(system, this):
    answer = this.message('Deploy', 'Ready to deploy?', body={
        'type': 'object',
        'properties': {
            'version': {'label': 'Version', 'element': 'string', 'type': 'string', 'order': 1},
            'replicas': {'label': 'Replicas', 'element': 'number', 'type': 'number', 'order': 2},
            'confirm': {'label': 'Really?', 'element': 'toggle', 'default': False, 'order': 3},
        },
        'required': ['version', 'replicas'],
    })
    return {'answer': answer}
"""
ASK_WITH_TIMEOUT = """
def handler(system, this):
    this.message('Anyone?', request='Hello?', timeout=1)
"""
ASK_LATER = """
def handler(system, this):
    msg = system.message(subject='Later', message='no hurry', body={
        'properties': {'ok': {'element': 'toggle'}}, 'required': ['ok']})
    this.set_output('message_id', msg.get('id'))
    msg.wait()
    return {'response': msg.get('response'), 'status': msg.get('status')}
"""


@pytest.fixture
def api(django_user_model) -> APIClient:
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_superuser("alice", password="x" * 12))
    return client


def _open_message(execution: Execution) -> Message:
    return wait_until(
        lambda: Message.objects.filter(execution=execution, status="open").first(), timeout=20
    )


def _ended(execution: Execution, timeout: float = 20) -> Execution:
    return engine.wait_for([execution.pk], timeout=timeout)[0]


def test_a_flow_asks_a_question_and_resumes_with_the_answer_given_through_the_api(make_flow, api):
    make_flow("ask-name", ASK_NAME)
    execution = engine.start_execution(flow="ask-name")
    message = _open_message(execution)
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status == "WAITING", 10)

    listed = api.get("/api/messages/", {"status": "open"}).json()["results"]
    assert [m["id"] for m in listed] == [message.pk]
    assert listed[0]["subject"] == "Who are you?"
    assert listed[0]["body"]["properties"]["string"]["label"] == "Name?"
    assert listed[0]["execution"] == execution.pk

    answer = api.post(f"/api/messages/{message.pk}/respond/", {"response": {"string": "Ada"}},
                      format="json")

    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "answered"
    assert answer.json()["answered_by"] == "alice"
    ended = _ended(execution)
    assert (ended.status, ended.message) == ("ENDED_SUCCESS", "hello Ada")


@pytest.mark.parametrize(("response", "field", "says"), [
    ({"replicas": 2}, "response.version", "required"),
    ({"version": "1.2", "replicas": "two"}, "response.replicas", "type number"),
    ({"version": "1.2", "replicas": 2, "confirm": "yes"}, "response.confirm", "type boolean"),
    ({"version": "1.2", "replicas": 2, "colour": "red"}, "response.colour", "not a field"),
    ("just text", "response", "JSON object"),
])
def test_answers_that_do_not_fit_the_form_are_refused_naming_the_field(
    make_flow, api, response, field, says
):
    make_flow("ask-form", ASK_FORM)
    execution = engine.start_execution(flow="ask-form")
    message = _open_message(execution)

    refused = api.post(f"/api/messages/{message.pk}/respond/", {"response": response}, format="json")

    assert refused.status_code == 400
    assert says in " ".join(refused.json()[field])
    assert Execution.objects.get(pk=execution.pk).status == "WAITING"
    ok = api.post(f"/api/messages/{message.pk}/respond/",
                  {"response": {"version": "1.2", "replicas": 3}}, format="json")
    assert ok.status_code == 200
    ended = _ended(execution)
    assert ended.output_value == {"answer": {"version": "1.2", "replicas": 3, "confirm": False}}
    again = api.post(f"/api/messages/{message.pk}/respond/", {"response": {}}, format="json")
    assert again.status_code == 409 and "answered" in again.json()["status"][0]


def test_a_respond_without_a_response_is_refused_naming_the_field(make_flow, api):
    make_flow("ask-name", ASK_NAME)
    execution = engine.start_execution(flow="ask-name")
    message = _open_message(execution)
    refused = api.post(f"/api/messages/{message.pk}/respond/", {}, format="json")
    assert refused.status_code == 400 and "response" in refused.json()
    engine.cancel_execution(execution)


def test_a_wait_with_a_timeout_ends_the_flow_with_an_error_and_expires_the_form(make_flow):
    make_flow("ask-timeout", ASK_WITH_TIMEOUT)
    execution = engine.start_execution(flow="ask-timeout")
    ended = _ended(execution)
    assert ended.status == "ENDED_ERROR"
    assert "MessageResponseTimeoutError" in ended.message and "not answered within 1 s" in ended.message
    assert Message.objects.get(execution=execution).status == "expired"


def test_cancelling_a_waiting_flow_ends_it_at_once_and_expires_its_form(make_flow):
    make_flow("ask-name", ASK_NAME)
    execution = engine.start_execution(flow="ask-name")
    message = _open_message(execution)
    wait_until(lambda: Execution.objects.get(pk=execution.pk).status == "WAITING", 10)

    engine.cancel_execution(execution)

    wait_until(lambda: Message.objects.get(pk=message.pk).status == "expired", 5)
    assert Execution.objects.get(pk=execution.pk).status == "ENDED_CANCELLED"


def test_system_message_creates_a_form_that_a_later_wait_picks_up(make_flow, api):
    make_flow("ask-later", ASK_LATER)
    execution = engine.start_execution(flow="ask-later")
    message = _open_message(execution)
    assert message.text == "no hurry"

    assert api.get(f"/api/messages/{message.pk}/").json()["message"] == "no hurry"
    api.post(f"/api/messages/{message.pk}/respond/", {"response": {"ok": True}}, format="json")

    ended = _ended(execution)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["response"] == {"ok": True}
    assert ended.output_value["status"] == "answered"
    assert ended.output_value["message_id"] == message.pk
