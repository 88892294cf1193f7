"""Secrets of connections: encrypted at rest, and in no input, output, message or log line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection as db

from connectors.models import Connection, ExecutionSecret
from executions import engine
from executions.models import Execution, ExecutionLog

from ..connector_peers import HttpPeer, http_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

PASSWORD = "Sup3r-Secret-Passw0rd"


@pytest.fixture
def http() -> Iterator[HttpPeer]:
    with http_server() as peer:
        peer.password = PASSWORD
        yield peer


def raw_secrets(table: str, pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT secrets FROM {table} WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def everything_a_user_can_see(root: Execution, worker_log: str) -> str:
    rows = Execution.objects.filter(pk=root.pk) | Execution.objects.filter(root=root)
    seen = [worker_log]
    for e in rows:
        seen += [e.name, e.message, str(e.input_value), str(e.output_value)]
    for entry in ExecutionLog.objects.filter(execution__in=rows):
        seen += [entry.text, str(entry.data)]
    return "\n".join(seen)


def test_a_stored_password_is_encrypted_in_the_database(http):
    conn = Connection.objects.create(name="svc", connector_type="REST",
                                     value={"url": http.url("/auth")},
                                     secrets={"auth": ["alice", PASSWORD]})
    raw = raw_secrets("connectors_connection", conn.pk)
    assert PASSWORD not in raw and "alice" not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    key = Fernet(settings.FIELD_ENCRYPTION_KEY[0].encode())
    assert PASSWORD in key.decrypt(raw.encode()).decode()
    assert Connection.objects.get(pk=conn.pk).secrets == {"auth": ["alice", PASSWORD]}


def test_a_stored_password_appears_in_no_execution_field_and_no_log_line(
    make_flow, run_flow, http, worker
):
    Connection.objects.create(name="svc", connector_type="REST",
                              value={"url": http.url("/auth")},
                              secrets={"auth": ["alice", PASSWORD]})
    make_flow("uses-secret", f"""
        import flow_api

        def handler(system, this):
            ok = this.connect('svc')
            this.log('called', output=ok.get('output_value'))
            try:
                # The server echoes nothing, but the URL carries the password: masked,
                # in the retries' log lines too (retried quickly: the masking is tested,
                # not the default backoff's 1 + 2 + 4 + 8 s).
                this.connect('svc', url='http://alice:{PASSWORD}@127.0.0.1:1/x',
                             retry_backoff={{'initial': 0.05, 'maximum': 0.1, 'max_retries': 2}})
            except flow_api.DependencyFailedError as exc:
                this.log('failed as expected', error=str(exc))
            return {{'user': ok.get('output_value')['json']['user']}}
    """)
    ended = run_flow("uses-secret")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"user": "alice"}
    children = list(Execution.objects.filter(parent=ended).order_by("id"))
    assert children[1].status == "ENDED_ERROR"
    assert "alice:********@127.0.0.1:1" in children[1].message
    assert children[1].input_value["url"] == "http://alice:********@127.0.0.1:1/x"
    assert "retrying in" in " ".join(children[1].logs.values_list("text", flat=True))
    # The flow's own script holds the password (its author wrote it there); nothing else.
    assert PASSWORD not in everything_a_user_can_see(ended, worker.log())


def test_inline_secrets_are_kept_encrypted_until_the_call_ran_then_dropped(http):
    execution = engine.start_execution(
        type="CONNECTION", connector_type="REST", run=False,
        input_value={"url": http.url("/auth"), "auth": ["alice", PASSWORD]},
    )
    assert execution.input_value == {"url": http.url("/auth"), "auth": "********"}
    stored = ExecutionSecret.objects.get(execution=execution)
    assert PASSWORD not in raw_secrets("connectors_executionsecret", stored.pk)
    engine.run_deferred(execution)
    ended = engine.wait_for([execution.pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["json"] == {"user": "alice"}
    assert not ExecutionSecret.objects.filter(execution=execution).exists()


def test_an_unknown_connection_is_refused_naming_it(make_flow, run_flow):
    with pytest.raises(engine.StartError) as refused:
        engine.start_execution(type="CONNECTION", connection="nope")
    assert refused.value.field == "connection" and refused.value.not_found
    make_flow("calls-nothing", "def handler(system, this):\n    this.connect('nope')\n")
    ended = run_flow("calls-nothing")
    assert ended.status == "ENDED_ERROR"
    assert "connection: no connection named 'nope'" in ended.message


def test_an_unknown_type_or_a_missing_input_ends_the_call_in_error_naming_it(make_flow, run_flow):
    make_flow("bad-calls", """
        import flow_api

        def handler(system, this):
            errors = []
            for kwargs in ({'connector_type': 'FTP', 'host': 'x'},
                           {'connector_type': 'SQLPG', 'host': '127.0.0.1'}):
                try:
                    this.connect(**kwargs)
                except flow_api.DependencyFailedError as exc:
                    errors.append(exc.executions[0].get('message'))
            return {'errors': errors}
    """)
    ended = run_flow("bad-calls")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["errors"] == [
        "UnknownConnectorType: unknown connector type 'FTP'; "
        "one of GIT, REST, SCP, SMTP, SQLPG, SSH",
        "InputError: the SQLPG connector needs the input 'execute' or 'fetch' or 'fetchrow' "
        "or 'fetchval'",
    ]


def test_a_connection_with_a_queue_runs_its_calls_on_that_worker_group(http):
    Connection.objects.create(name="remote", connector_type="REST",
                              value={"url": http.url("/json")}, queue="dmz")
    execution = engine.start_execution(type="CONNECTION", connection="remote")
    assert execution.queue == "dmz" and execution.name == "remote"
    assert execution.connection is not None and execution.connector_type == "REST"
    engine.cancel_execution(execution)  # no worker serves "dmz" here
