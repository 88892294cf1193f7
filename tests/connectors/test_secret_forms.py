"""Secrets are masked in every form a connector produced, not only in clear.

A REST call with Basic auth sends base64("user:password") in the Authorization header, and
a password in the query is URL-encoded: a peer that echoes the request (the /echo route of
the test HTTP server) returns those forms, which must not reach output_value, the log or
the error message, nor what a Viewer reads in the API.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from connectors.base import MASK, Scrubber
from connectors.models import Connection
from executions import engine
from executions.models import Execution, ExecutionLog
from executions.permissions import sync_groups

from ..connector_peers import HttpPeer, http_server

# "bob:" is not a multiple of 3 bytes long: the base64 of the password alone is not part of
# the header's base64, which only the connector that builds the header can register.
USER = "bob"
PASSWORD = "p@ss w/rd:1&x"  # URL-encoding changes it: @, space, /, : and & are all encoded
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
FORMS = {
    "clear": PASSWORD,
    "base64 of user:password": BASIC,
    "quote": quote(PASSWORD, safe=""),
    "quote_plus": quote_plus(PASSWORD),
}


@pytest.fixture
def http() -> Iterator[HttpPeer]:
    with http_server() as peer:
        yield peer


@pytest.fixture
def viewer(django_user_model) -> APIClient:
    sync_groups(apps)  # the groups of the data migration (flushed by transactional tests)
    user = django_user_model.objects.create_user("viewer", password="v" * 12)
    user.groups.add(Group.objects.get(name="Viewers"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def call(timeout: float = 30, **kwargs) -> Execution:
    execution = engine.start_execution(type="CONNECTION", **kwargs)
    ended = engine.wait_for([execution.pk], timeout=timeout)[0]
    assert ended.is_ended, f"still {ended.status}"
    return ended


def shown(execution: Execution) -> str:
    """What is stored of the call and read by users: output, message, log entries."""
    logs = ExecutionLog.objects.filter(execution=execution).order_by("id")
    return "\n".join([
        json.dumps(execution.output_value), execution.message or "",
        *(f"{entry.text} {json.dumps(entry.data)}" for entry in logs),
    ])


def assert_no_form_in(text: str) -> None:
    leaked = [name for name, form in FORMS.items() if form in text]
    assert not leaked, f"{', '.join(leaked)} of the password in: {text}"
    assert MASK in text


def stored_echo(http: HttpPeer, path: str) -> Connection:
    """A stored REST connection whose Basic auth and one query parameter are secrets, and
    whose URL carries the password URL-encoded as well (quote, safe="")."""
    return Connection.objects.create(
        name="echo", connector_type="REST",
        value={"url": http.url(path) + "?k=" + quote(PASSWORD, safe="")},
        secrets={"auth": [USER, PASSWORD], "params": {"pw": PASSWORD}},
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_an_echoed_authorization_header_and_query_are_masked_in_the_output(http, viewer):
    stored_echo(http, "/echo")
    ended = call(connection="echo")
    assert ended.status == "ENDED_SUCCESS", ended.message
    echo = ended.output_value["json"]
    # The peer really got every form: the mask stands for them, not for a failed call.
    assert echo["authorization"] == f"Basic {MASK}"
    assert echo["raw_query"] == f"k={MASK}&pw={MASK}"
    assert echo["query"] == {"k": [MASK], "pw": [MASK]}
    assert ended.output_value["url"] == http.url(f"/echo?k={MASK}&pw={MASK}")
    assert http.hits["/echo"] == 1
    assert_no_form_in(shown(ended))

    seen = viewer.get(f"/api/executions/{ended.pk}/")
    assert seen.status_code == 200
    assert seen.json()["output_value"]["json"]["authorization"] == f"Basic {MASK}"
    assert_no_form_in(seen.content.decode())
    entries = viewer.get(f"/api/executions/{ended.pk}/logs/")
    assert entries.status_code == 200 and "-> 200" in entries.content.decode()
    assert not any(form in entries.content.decode() for form in FORMS.values())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_a_500_answer_echoing_the_credentials_is_masked_in_message_output_and_api(http, viewer):
    stored_echo(http, "/echo/500")
    ended = call(connection="echo")
    assert ended.status == "ENDED_ERROR"
    assert "answered 500 Internal Server Error" in ended.message
    # The message quotes the start of the answer: the echoed header and query, masked.
    assert f'"authorization": "Basic {MASK}"' in ended.message
    assert f'"raw_query": "k={MASK}&pw={MASK}"' in ended.message
    assert ended.output_value["status_code"] == 500
    assert_no_form_in(shown(ended))
    seen = viewer.get(f"/api/executions/{ended.pk}/")
    assert seen.status_code == 200 and seen.json()["status"] == "ENDED_ERROR"
    assert_no_form_in(seen.content.decode())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_an_unreachable_url_with_the_password_in_its_query_is_masked_in_message_and_log():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    Connection.objects.create(
        name="down", connector_type="REST",
        value={"url": f"http://127.0.0.1:{port}/x?a={quote(PASSWORD, safe='')}"
                      f"&b={quote_plus(PASSWORD)}",
               "retry_backoff": {"initial": 0.05, "deadline": 0.3}},
        secrets={"auth": [USER, PASSWORD]},
    )
    ended = call(connection="down")
    assert ended.status == "ENDED_ERROR"
    assert ended.message == (
        f"ConnectorError: GET http://127.0.0.1:{port}/x?a={MASK}&b={MASK} "
        "could not connect: [Errno 111] Connection refused"
    )
    retries = list(ExecutionLog.objects.filter(execution=ended, level="WARNING"))
    assert len(retries) >= 2
    assert all(r.text.startswith(f"GET http://127.0.0.1:{port}/x?a={MASK}&b={MASK}: ")
               for r in retries), [r.text for r in retries]
    assert any("could not connect" in r.text for r in retries)
    assert_no_form_in(shown(ended))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_a_password_given_url_encoded_in_the_url_is_masked_in_the_header_requests_built(http):
    # requests decodes the user info and sends base64("bob:p@ss w/rd:1&x").
    url = http.base.replace("://", f"://{USER}:{quote(PASSWORD, safe='')}@") + "/echo"
    ended = call(connector_type="REST", input_value={"url": url})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.input_value == {"url": f"http://{USER}:{MASK}@127.0.0.1:"
                                        f"{http.server.server_address[1]}/echo"}
    assert ended.output_value["json"]["authorization"] == f"Basic {MASK}"
    assert_no_form_in(shown(ended))


# --- the Scrubber itself ---------------------------------------------------------------------


def test_the_scrubber_masks_the_clear_url_encoded_and_base64_forms_of_a_secret():
    scrubber = Scrubber([PASSWORD])
    raw = PASSWORD.encode()
    for form in (PASSWORD, quote(PASSWORD, safe=""), quote_plus(PASSWORD),
                 base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
                 json.dumps(PASSWORD)[1:-1]):
        assert scrubber.text(f"<{form}>") == f"<{MASK}>", form
    # base64 of user:password is not derived from the password: its builder registers it.
    assert base64.b64encode(raw).decode().rstrip("=") not in BASIC
    assert scrubber.text(BASIC) == BASIC
    scrubber.add_form(BASIC)
    assert scrubber.text(f"Authorization: Basic {BASIC}") == f"Authorization: Basic {MASK}"
    assert scrubber.json({"h": [BASIC, 1]}) == {"h": [MASK, 1]}


def test_longer_forms_are_masked_before_the_secrets_they_contain():
    scrubber = Scrubber(["abcd", "xxabcdxx"])
    assert scrubber.text("xxabcdxx abcd") == f"{MASK} {MASK}"
    padded = base64.b64encode(b"abcde").decode()
    assert padded.endswith("=")  # the unpadded form is a prefix: the padded goes first
    assert scrubber.text(padded) == padded  # not a secret of this scrubber
    assert Scrubber(["abcde"]).text(padded) == MASK


def test_very_short_secrets_are_not_masked_in_any_form():
    scrubber = Scrubber(["ab", "x&y"])
    text = "a tab, x&y, x%26y, YWI= and eCZ5 stay"
    assert scrubber.text(text) == text
    scrubber.add_form("YWI")  # an encoded form shorter than the minimum neither
    assert scrubber.text(text) == text
