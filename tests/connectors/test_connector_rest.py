"""The REST connector, called from flows on a real worker against a local HTTP server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from connectors.models import Connection
from executions import engine
from executions.models import Execution, ExecutionLog

from ..connector_peers import HttpPeer, http_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture
def http() -> Iterator[HttpPeer]:
    with http_server() as peer:
        yield peer


def call(inputs: dict, timeout: float = 30) -> Execution:
    """One inline REST execution through the one way in, waited for."""
    execution = engine.start_execution(type="CONNECTION", connector_type="REST",
                                         input_value=inputs)
    ended = engine.wait_for([execution.pk], timeout=timeout)[0]
    assert ended.is_ended, f"still {ended.status}"
    return ended


def test_a_flow_gets_json_and_text_from_a_rest_call(make_flow, run_flow, http):
    make_flow("rest-read", """
        def handler(system, this, inputs):
            j = this.connect(connector_type='REST', url=inputs['base'] + '/json')
            t = this.task('REST', url=inputs['base'] + '/text')
            return {'json': j.get('output_value')['json'],
                    'text': t.get('output_value')['text'],
                    'type': j.get('type'), 'status_code': j.get('output_value')['status_code']}
    """)
    ended = run_flow("rest-read", {"base": http.base})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"json": {"hello": "world", "n": 1}, "text": "plain text",
                                  "type": "CONNECTION", "status_code": 200}
    children = list(Execution.objects.filter(parent=ended).order_by("id"))
    assert [c.name for c in children] == ["REST", "REST"]
    assert [c.connector_type for c in children] == ["REST", "REST"]


def test_method_params_headers_and_each_kind_of_body_reach_the_server(http):
    json_call = call({"url": http.url("/echo"), "method": "post", "json": {"a": [1, 2]},
                      "params": {"q": "x y"}, "headers": {"X-Token": "t-1"}})
    assert json_call.status == "ENDED_SUCCESS", json_call.message
    echo = json_call.output_value["json"]
    assert echo["method"] == "POST" and echo["query"] == {"q": ["x y"]}
    assert echo["body"] == '{"a": [1, 2]}' and echo["content_type"] == "application/json"
    assert echo["x_token"] == "t-1"

    text_call = call({"url": http.url("/echo"), "method": "PUT", "text": "héllo"})
    assert text_call.output_value["json"]["body"] == "héllo"
    assert text_call.output_value["json"]["content_type"] == "text/plain; charset=utf-8"

    form_call = call({"url": http.url("/echo"), "method": "PATCH", "urlencoded": {"k": "v"}})
    assert form_call.output_value["json"]["body"] == "k=v"
    assert form_call.output_value["json"]["content_type"] == "application/x-www-form-urlencoded"


def test_url_parts_build_the_url(http):
    ended = call({"scheme": "http", "hostname": "127.0.0.1",
                  "port": http.server.server_address[1], "path": "json"})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["url"] == http.url("/json")


def test_redirects_are_followed_unless_disabled(http):
    followed = call({"url": http.url("/redirect")})
    assert followed.status == "ENDED_SUCCESS"
    assert followed.output_value["url"] == http.url("/json")
    assert followed.output_value["json"] == {"hello": "world", "n": 1}

    kept = call({"url": http.url("/redirect"), "allow_redirects": False,
                 "expected_status_code": 302})
    assert kept.status == "ENDED_SUCCESS", kept.message
    assert kept.output_value["headers"]["Location"] == "/json"


def test_an_unexpected_status_ends_in_error_naming_it_and_keeps_the_answer(http):
    ended = call({"url": http.url("/status/404")})
    assert ended.status == "ENDED_ERROR"
    assert ended.message == (
        f"ConnectorError: GET {http.url('/status/404')} answered 404 Not Found "
        "(expected 200, 201, 202, 204): status 404 body"
    )
    assert ended.output_value["status_code"] == 404
    assert ended.output_value["text"] == "status 404 body"

    accepted = call({"url": http.url("/status/404"), "expected_status_code": [200, 404]})
    assert accepted.status == "ENDED_SUCCESS"


def test_a_failing_call_raises_dependency_failed_in_the_flow(make_flow, run_flow, http):
    make_flow("rest-fails", """
        import flow_api

        def handler(system, this, inputs):
            try:
                this.connect(connector_type='REST', url=inputs['base'] + '/status/500')
            except flow_api.DependencyFailedError as exc:
                failed = exc.executions[0]
                return {'caught': str(exc), 'status_code': failed.load('output_value')['status_code']}
    """)
    ended = run_flow("rest-fails", {"base": http.base})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert "connection execution" in ended.output_value["caught"]
    assert "answered 500 Internal Server Error" in ended.output_value["caught"]
    assert ended.output_value["status_code"] == 500


def test_5xx_answers_are_retried_with_backoff_until_one_succeeds(http):
    started = time.monotonic()
    ended = call({"url": http.url("/flaky/a/2"), "retry_backoff": {
        "initial": 0.2, "multiplier": 2, "maximum": 1, "deadline": 10}})
    took = time.monotonic() - started
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["json"] == {"attempts": 3}
    assert took >= 0.6  # waited 0.2 s, then 0.4 s
    retries = [log.text for log in ExecutionLog.objects.filter(execution=ended, level="WARNING")]
    assert len(retries) == 2
    assert retries[0].endswith("status 503; retrying in 0.2 s")
    assert retries[1].endswith("status 503; retrying in 0.4 s")


def test_retries_stop_at_the_deadline_and_without_backoff_there_is_no_retry(http):
    ended = call({"url": http.url("/flaky/b/100"), "retry_backoff": {
        "initial": 0.1, "multiplier": 1, "deadline": 0.5}})
    assert ended.status == "ENDED_ERROR"
    assert "answered 503 Service Unavailable" in ended.message
    assert 4 <= http.hits["/flaky/b/100"] <= 7

    once = call({"url": http.url("/flaky/c/1"), "retry_backoff": False})
    assert once.status == "ENDED_ERROR"
    assert http.hits["/flaky/c/1"] == 1


def test_connection_errors_are_retried_then_named(http):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ended = call({"url": f"http://127.0.0.1:{port}/", "retry_backoff": {
        "initial": 0.05, "deadline": 0.3}})
    assert ended.status == "ENDED_ERROR"
    assert "could not connect" in ended.message and "Connection refused" in ended.message
    assert ExecutionLog.objects.filter(execution=ended, level="WARNING").count() >= 2


def test_a_hung_server_does_not_hang_the_flow(make_flow, run_flow, http):
    make_flow("rest-hang", """
        def handler(system, this, inputs):
            this.connect(connector_type='REST', url=inputs['base'] + '/hang', timeout=0.5)
    """)
    started = time.monotonic()
    ended = run_flow("rest-hang", {"base": http.base}, timeout=20)
    assert time.monotonic() - started < 10
    assert http.hanging.is_set()
    assert ended.status == "ENDED_ERROR"
    assert "timed out: no answer within 0.5 s" in ended.message


def test_twenty_rest_calls_run_in_parallel_with_run_async(make_flow, run_flow, http):
    make_flow("rest-fan-out", """
        def handler(system, this, inputs):
            calls = [this.connect(connector_type='REST', url=inputs['base'] + '/echo',
                                  params={'n': str(n)}, run=False) for n in range(20)]
            for c in calls:
                c.run_async()
            this.wait_for(*calls)
            return {'ns': sorted(int(c.get('output_value')['json']['query']['n'][0])
                                 for c in calls)}
    """)
    ended = run_flow("rest-fan-out", {"base": http.base}, timeout=60)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"ns": list(range(20))}
    assert http.hits["/echo"] == 20


def test_calls_started_with_wait_false_are_awaited_together(make_flow, run_flow, http):
    make_flow("rest-no-wait", """
        def handler(system, this, inputs):
            a = this.connect(connector_type='REST', url=inputs['base'] + '/json', wait=False)
            b = this.connect(connector_type='REST', url=inputs['base'] + '/text', wait=False)
            this.wait_for(a, b)
            return {'a': a.get('output_value')['json']['n'], 'b': b.get('output_value')['text']}
    """)
    ended = run_flow("rest-no-wait", {"base": http.base})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"a": 1, "b": "plain text"}


def test_a_stored_connection_is_called_with_overridden_inputs(make_flow, run_flow, http):
    Connection.objects.create(
        name="api", connector_type="REST", value={"url": http.url("/json")},
        secrets={"auth": ["alice", "s3cret-pass"]},
    )
    make_flow("rest-stored", """
        def handler(system, this, inputs):
            plain = this.connect('api')
            authed = this.connect('api', url=inputs['base'] + '/auth')
            return {'plain': plain.get('output_value')['json'],
                    'authed': authed.get('output_value')['json'],
                    'inputs': authed.get('input_value'), 'name': authed.get('name')}
    """)
    ended = run_flow("rest-stored", {"base": http.base})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {
        "plain": {"hello": "world", "n": 1}, "authed": {"user": "alice"},
        "inputs": {"url": http.url("/auth")}, "name": "api",
    }
    child = Execution.objects.filter(parent=ended).last()
    assert child is not None and child.connection is not None and child.connection.name == "api"


def test_bad_inputs_end_in_error_naming_the_input(http):
    unknown = call({"url": http.url("/json"), "metod": "GET"})
    assert unknown.status == "ENDED_ERROR"
    assert "the REST connector has no input 'metod'" in unknown.message
    missing = call({"method": "GET"})
    assert missing.message == "InputError: the REST connector needs the input 'url' or 'hostname'"
    both = call({"url": http.url("/echo"), "json": {}, "text": "x"})
    assert "takes only one of 'json', 'data', 'urlencoded', 'text'" in both.message
