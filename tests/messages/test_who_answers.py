"""Who may answer a message form: Operators any, a Developer those of their own Try."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from executions import engine, permissions
from executions.models import Message

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

ASK = """
def handler(system, this):
    name = this.message('Who are you?', request='Name?')
    return this.success(f'hello {name["string"]}')
"""


@pytest.fixture(autouse=True)
def groups() -> None:
    """A transactional test's flush took the groups the data migration made: make them."""
    permissions.sync_groups(apps)


def _member(django_user_model, name: str, group: str) -> APIClient:  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(name, password="x" * 12)
    user.groups.add(Group.objects.get(name=group))
    client = APIClient()
    client.force_authenticate(user)
    return client


def _asked(client: APIClient, mode: str) -> tuple[int, Message]:
    started = client.post("/api/executions/", {"flow": "ask", "mode": mode}, format="json")
    assert started.status_code == 201, started.json()
    pk = started.json()["id"]
    message = wait_until(
        lambda: Message.objects.filter(execution_id=pk, status="open").first(), timeout=20
    )
    return pk, message


def _respond(client: APIClient, message: Message, name: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/messages/{message.pk}/respond/", {"response": {"string": name}}, format="json"
    )


def test_a_developer_answers_the_form_of_their_own_try(make_flow, django_user_model) -> None:
    make_flow("ask", ASK)
    dev = _member(django_user_model, "dev", "Developers")
    pk, message = _asked(dev, "development")

    answer = _respond(dev, message, "Ada")

    assert answer.status_code == 200, answer.json()
    assert answer.json()["answered_by"] == "dev"
    ended = engine.wait_for([pk], timeout=20)[0]
    assert (ended.status, ended.message) == ("ENDED_SUCCESS", "hello Ada")


def test_a_developer_may_not_answer_another_developers_try(make_flow, django_user_model) -> None:
    make_flow("ask", ASK)
    owner = _member(django_user_model, "owner", "Developers")
    other = _member(django_user_model, "other", "Developers")
    _pk, message = _asked(owner, "development")

    refused = _respond(other, message, "Eve")

    assert refused.status_code == 403
    assert "change_message" in refused.json()["detail"]
    assert Message.objects.get(pk=message.pk).status == "open"


def test_a_developer_may_not_answer_a_productive_form_an_operator_may(
    make_flow, django_user_model
) -> None:
    make_flow("ask", ASK)
    operator = _member(django_user_model, "op", "Operators")
    dev = _member(django_user_model, "dev", "Developers")
    viewer = _member(django_user_model, "view", "Viewers")
    pk, message = _asked(operator, "productive")

    assert _respond(dev, message, "Eve").status_code == 403
    assert _respond(viewer, message, "Eve").status_code == 403
    answer = _respond(operator, message, "Bo")

    assert answer.status_code == 200, answer.json()
    ended = engine.wait_for([pk], timeout=20)[0]
    assert ended.message == "hello Bo"


def test_an_operator_answers_a_developers_try(make_flow, django_user_model) -> None:
    make_flow("ask", ASK)
    dev = _member(django_user_model, "dev", "Developers")
    operator = _member(django_user_model, "op", "Operators")
    _pk, message = _asked(dev, "development")

    assert _respond(operator, message, "Cy").status_code == 200
