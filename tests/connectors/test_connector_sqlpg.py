"""The SQLPG connector against the machine's real PostgreSQL, in a scratch database."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.models import Connection
from executions import engine
from executions.models import Execution, ExecutionLog

from ..connector_peers import scratch_database

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture
def pg() -> Iterator[dict[str, Any]]:
    try:
        with scratch_database(f"connector_sqlpg_{os.getpid()}") as target:
            yield target
    except OSError as exc:  # pragma: no cover - no PostgreSQL on this machine
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {exc}")


def sql(pg: dict[str, Any], **inputs: Any) -> Execution:
    execution = engine.start_execution(
        type="CONNECTION", connector_type="SQLPG", input_value={**pg, **inputs}
    )
    ended = engine.wait_for([execution.pk], timeout=30)[0]
    assert ended.is_ended, f"still {ended.status}"
    return ended


def test_a_flow_runs_each_of_the_four_calls_with_params(make_flow, run_flow, pg):
    make_flow("sql-all", """
        def handler(system, this, inputs):
            db = inputs['db']
            def q(**kw):
                return this.connect(connector_type='SQLPG', **db, **kw).get('output_value')['result']
            q(execute='CREATE TABLE pets (id serial PRIMARY KEY, name text, age int)')
            inserted = q(execute="INSERT INTO pets (name, age) VALUES (%s, %s), (%s, %s)",
                         params=['rex', 3, 'tom', 5])
            rows = q(fetch='SELECT name, age FROM pets WHERE age >= %(min)s ORDER BY id',
                     params={'min': 1})
            row = q(fetchrow='SELECT name FROM pets WHERE age = $1', params=[5])
            none = q(fetchrow='SELECT name FROM pets WHERE age = $1', params=[99])
            count = q(fetchval='SELECT count(*) FROM pets')
            return {'inserted': inserted, 'rows': rows, 'row': row, 'none': none, 'count': count}
    """)
    ended = run_flow("sql-all", {"db": pg})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {
        "inserted": 2,
        "rows": [{"name": "rex", "age": 3}, {"name": "tom", "age": 5}],
        "row": {"name": "tom"},
        "none": None,
        "count": 2,
    }


def test_values_json_cannot_hold_come_back_in_a_lossless_text_form(pg):
    ended = sql(pg, fetchrow="""
        SELECT DATE '2024-02-29' AS d, TIMESTAMPTZ '2024-05-01 12:30:00.25+00' AS ts,
               TIME '13:45:01' AS t, NUMERIC '12345678901234567890.10' AS n,
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '\\x00ff10'::bytea AS b,
               INTERVAL '1 day 2 hours 0.5 seconds' AS i, 'NaN'::float8 AS nan,
               ARRAY[1.5, 2.25]::numeric[] AS arr, '{"k": [1, null]}'::jsonb AS j,
               %s::jsonb AS p
    """, params=[{"x": 1}])
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["result"] == {
        "d": "2024-02-29", "ts": "2024-05-01T12:30:00.250000+00:00", "t": "13:45:01",
        "n": "12345678901234567890.10", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "b": "AP8Q", "i": "P1DT7200.5S", "nan": "NaN", "arr": ["1.5", "2.25"],
        "j": {"k": [1, None]}, "p": {"x": 1},
    }


def test_a_syntax_error_ends_in_error_with_postgresqls_message(pg):
    ended = sql(pg, fetch="SELEC 1")
    assert ended.status == "ENDED_ERROR"
    assert ended.message.startswith("ConnectorError: SQLPG fetch on 127.0.0.1:5432/")
    assert 'SyntaxError: syntax error at or near "SELEC" [SQLSTATE 42601]' in ended.message


def test_a_statement_that_runs_too_long_is_stopped_by_the_timeout(pg):
    started = time.monotonic()
    ended = sql(pg, execute="SELECT pg_sleep(10)", timeout=0.5)
    assert time.monotonic() - started < 8
    assert ended.status == "ENDED_ERROR"
    assert "canceling statement due to statement timeout (timeout 0.5 s)" in ended.message


def test_a_failed_statement_leaves_nothing_half_written(pg):
    assert sql(pg, execute="CREATE TABLE t (v int)").status == "ENDED_SUCCESS"
    failed = sql(pg, execute="INSERT INTO t VALUES (1); INSERT INTO t VALUES ('x')")
    assert failed.status == "ENDED_ERROR"
    assert sql(pg, fetchval="SELECT count(*) FROM t").output_value["result"] == 0


def test_a_stored_connection_keeps_its_password_secret(make_flow, run_flow, pg):
    # Trust authentication accepts any password: the point is where it goes and where not.
    Connection.objects.create(name="warehouse", connector_type="SQLPG", value=pg,
                              secrets={"password": "pg-S3cret-pw"})
    make_flow("sql-stored", """
        def handler(system, this):
            # The server spells the password out: the answer still does not show it.
            child = this.connect('warehouse', fetchval="SELECT 'pg-' || 'S3cret-pw is it'")
            return {'result': child.get('output_value')['result']}
    """)
    ended = run_flow("sql-stored")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"result": "******** is it"}
    child = Execution.objects.get(parent=ended)
    assert "pg-S3cret-pw" not in str(child.input_value)
    for entry in ExecutionLog.objects.filter(execution__root=ended):
        assert "pg-S3cret-pw" not in entry.text + str(entry.data)


def test_a_password_in_a_dsn_is_masked_in_inputs_and_errors(pg):
    dsn = "postgresql://postgres:dsn-S3cret-pw@127.0.0.1:1/nowhere"
    ended = sql({}, dsn=dsn, fetchval="SELECT 1", timeout=3)
    assert ended.status == "ENDED_ERROR"
    assert "dsn-S3cret-pw" not in ended.message
    assert "dsn-S3cret-pw" not in str(ended.input_value)
    assert ended.input_value["dsn"] == "********"
    assert "postgresql://postgres:********@127.0.0.1:1/nowhere" in ended.message
