"""`/api/connections/`: secrets are written, never read back; CONNECTION executions by API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from connectors.models import Connection

from ..connector_peers import HttpPeer, http_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

PASSWORD = "api-Secret-Passw0rd"


@pytest.fixture
def http() -> Iterator[HttpPeer]:
    with http_server() as peer:
        peer.password = PASSWORD
        yield peer


def test_a_connection_is_created_with_secrets_that_no_answer_shows(api, http):
    created = api.post("/api/connections/", {
        "name": "billing", "connector_type": "rest", "value": {"url": http.url("/auth")},
        "secrets": {"auth": ["alice", PASSWORD]},
    }, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["connector_type"] == "REST"
    assert created.json()["secret_keys"] == ["auth"]
    assert "secrets" not in created.json()

    answers = [
        created,
        api.get("/api/connections/"),
        api.get("/api/connections/billing/"),
        api.patch("/api/connections/billing/", {"description": "pays"}, format="json"),
        api.get("/api/schema/"),
    ]
    for answer in answers:
        assert answer.status_code == 200 or answer.status_code == 201
        assert PASSWORD not in answer.content.decode()
    assert api.get("/api/connections/billing/").json() == {
        **{k: v for k, v in created.json().items() if k not in ("updated_at", "description")},
        "description": "pays", "updated_at": api.get("/api/connections/billing/").json()[
            "updated_at"],
    }


def test_patch_merges_secrets_and_null_removes_one_while_put_replaces_them(api):
    Connection.objects.create(name="db", connector_type="SQLPG", value={"host": "h"},
                              secrets={"password": "a-pass", "dsn": "x"})
    merged = api.patch("/api/connections/db/", {"secrets": {"password": "b-pass", "dsn": None}},
                       format="json")
    assert merged.status_code == 200, merged.json()
    assert merged.json()["secret_keys"] == ["password"]
    assert Connection.objects.get(name="db").secrets == {"password": "b-pass"}
    replaced = api.put("/api/connections/db/", {
        "name": "db", "connector_type": "SQLPG", "value": {"host": "h2"},
        "secrets": {"dsn": "postgresql://h2/db"},
    }, format="json")
    assert replaced.status_code == 200, replaced.json()
    assert Connection.objects.get(name="db").secrets == {"dsn": "postgresql://h2/db"}
    kept = api.put("/api/connections/db/", {"name": "db", "connector_type": "SQLPG",
                                            "value": {"host": "h3"}}, format="json")
    assert kept.status_code == 200
    assert Connection.objects.get(name="db").secrets == {"dsn": "postgresql://h2/db"}


def test_bad_input_is_refused_with_400_naming_the_field(api):
    def post(**body):
        return api.post("/api/connections/", {"name": "x", "connector_type": "REST", **body},
                        format="json")

    unknown = post(connector_type="FTP")
    assert unknown.status_code == 400
    assert "unknown connector type 'FTP'" in unknown.json()["connector_type"][0]
    clear = post(value={"url": "http://h", "password": "oops"})
    assert clear.status_code == 400
    assert "'password' is a secret: put it under secrets" in clear.json()["value"][0]
    in_url = post(value={"url": "http://bob:oops@h/"})
    assert "holds a URL with a password" in in_url.json()["value"][0]
    assert post(value=[1]).json()["value"] == ["value must be a JSON object"]
    assert post(secrets="pw").json()["secrets"] == ["secrets must be a JSON object"]
    assert post(name="a/b").status_code == 400
    assert not Connection.objects.exists()


def test_a_connection_call_is_started_and_awaited_through_the_executions_api(api, http):
    Connection.objects.create(name="billing", connector_type="REST",
                              value={"url": http.url("/json")},
                              secrets={"auth": ["alice", PASSWORD]})
    answer = api.post("/api/executions/", {
        "type": "CONNECTION", "connection": "billing",
        "input_value": {"url": http.url("/auth")}, "wait": 20,
    }, format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "ENDED_SUCCESS", body["message"]
    assert body["name"] == "billing"
    assert body["output_value"]["json"] == {"user": "alice"}
    assert PASSWORD not in json.dumps(body)

    inline = api.post("/api/executions/", {
        "type": "CONNECTION", "connector_type": "REST",
        "input_value": {"url": http.url("/auth"), "auth": ["alice", PASSWORD]}, "wait": 20,
    }, format="json").json()
    assert inline["status"] == "ENDED_SUCCESS", inline["message"]
    assert inline["input_value"]["auth"] == "********"
    assert PASSWORD not in json.dumps(inline)

    missing = api.post("/api/executions/", {"type": "CONNECTION", "connection": "nope"},
                       format="json")
    assert missing.status_code == 404
    assert missing.json() == {"connection": ["no connection named 'nope'"]}
