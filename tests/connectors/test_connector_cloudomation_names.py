"""Connector inputs by Cloudomation's names, from flows written as its documentation writes
them, on a real worker against loopback peers (HTTP echo, SSH server, SMTP server)."""

from __future__ import annotations

import email
import email.policy
import json
import time
from collections.abc import Iterator

import pytest

from executions.models import ExecutionLog

from ..connector_peers import HttpPeer, SshPeer, http_server, smtp_server, ssh_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture
def http() -> Iterator[HttpPeer]:
    with http_server() as peer:
        yield peer


@pytest.fixture
def sshd() -> Iterator[SshPeer]:
    with ssh_server() as peer:
        yield peer


def test_rest_data_is_a_json_body_with_basic_auth_base_path_and_two_timeouts(
        make_flow, run_flow, http):
    make_flow("rest-cloudomation", """
        import flow_api

        def handler(system: flow_api.System, this: flow_api.Execution):
            inputs = this.get('input_value')
            call = this.connect(
                connector_type='REST',
                scheme='http',
                hostname='127.0.0.1',
                port=inputs['port'],
                base_path='/echo/',
                path='/201',
                method='POST',
                data={'name': 'web-1', 'size': 2},
                username='alice',
                password=inputs['password'],
                connect_timeout=5,
                read_timeout=10,
            )
            outputs = call.get('output_value')
            this.save(output_value={
                'status_code': outputs['status_code'], 'echo': outputs['json'],
                'inputs': call.get('input_value'),
            })
            return this.success('created')
    """)
    ended = run_flow("rest-cloudomation", {"port": http.server.server_address[1],
                                               "password": http.password})
    assert ended.status == "ENDED_SUCCESS", ended.message
    out = ended.output_value
    assert out["status_code"] == 201
    echo = out["echo"]
    assert echo["method"] == "POST" and echo["content_type"] == "application/json"
    assert json.loads(echo["body"]) == {"name": "web-1", "size": 2}
    # The credential reached the server, and is masked in what the flow and the user see.
    assert echo["authorization"] == "Basic ********"
    assert out["inputs"]["password"] == "********" and out["inputs"]["username"] == "alice"
    assert http.password not in json.dumps(out)


def test_rest_urlencoded_is_a_form_body_and_retries_are_on_by_default(
        make_flow, run_flow, http):
    make_flow("rest-form", """
        import flow_api

        def handler(system, this):
            base = this.get('input_value')['base']
            form = this.connect(connector_type='REST', url=base, path='echo', method='POST',
                                urlencoded={'q': 'a b', 'n': '1'}).get('output_value')
            flaky = this.connect(connector_type='REST', url=base + '/flaky/d/1').get('output_value')
            try:
                this.connect(connector_type='REST', url=base + '/status/500')
            except flow_api.DependencyFailedError as err:
                failed = str(err)
            return {'form': form['json'], 'flaky': flaky['json'], 'failed': failed}
    """)
    started = time.monotonic()
    ended = run_flow("rest-form", {"base": http.base})
    assert ended.status == "ENDED_SUCCESS", ended.message
    out = ended.output_value
    assert out["form"]["body"] == "q=a+b&n=1"
    assert out["form"]["content_type"] == "application/x-www-form-urlencoded"
    # A 503 is retried without asking (Cloudomation's default: 1 s, then doubling) ...
    assert out["flaky"] == {"attempts": 2} and time.monotonic() - started >= 1
    retried = ExecutionLog.objects.filter(level="WARNING", text__contains="/flaky/d/1")
    assert [log.text.rsplit(": ", 1)[1] for log in retried] == ["status 503; retrying in 1 s"]
    # ... a 500 is the server's answer and is not.
    assert "answered 500" in out["failed"] and http.hits["/status/500"] == 1


def test_rest_max_redirects_bounds_the_redirects_followed(make_flow, run_flow, http):
    make_flow("rest-redirects", """
        def handler(system, this, inputs):
            return this.connect(connector_type='REST', **inputs).get('output_value')
    """)
    followed = run_flow("rest-redirects", {"url": http.url("/redirect"), "max_redirects": 1})
    assert followed.status == "ENDED_SUCCESS", followed.message
    assert followed.output_value["json"] == {"hello": "world", "n": 1}
    refused = run_flow("rest-redirects", {"url": http.url("/redirect"), "max_redirects": 0})
    assert refused.status == "ENDED_ERROR" and "redirected too many times" in refused.message


def test_rest_read_timeout_bounds_the_wait_for_the_answer(make_flow, run_flow, http):
    make_flow("rest-slow", """
        def handler(system, this):
            this.connect(connector_type='REST', url=this.get('input_value')['url'],
                         read_timeout=0.5, connect_timeout=5)
    """)
    try:
        ended = run_flow("rest-slow", {"url": http.url("/hang")})
    finally:
        http.release.set()
    assert ended.status == "ENDED_ERROR"
    assert "timed out: no answer within 0.5 s" in ended.message


def test_ssh_hostname_report_and_output_vars(make_flow, run_flow, sshd):
    make_flow("ssh-cloudomation", """
        def handler(system, this):
            inputs = this.get('input_value')
            script = '''
                HOSTNAME=$(echo web-1)
                GREETING=$(printf 'hello\\nworld')
                echo "working"
                echo "a warning" >&2
                #OUTPUT_VAR(HOSTNAME)
                #OUTPUT_VAR(GREETING)
            '''
            run_ssh = this.task(
                'SSH',
                hostname='127.0.0.1',
                port=inputs['port'],
                hostkey=inputs['hostkey'],
                username=inputs['username'],
                password=inputs['password'],
                script=script,
                output_vars=['UNSET'],
            )
            outputs = run_ssh.get('output_value')
            return {'host': outputs['var']['HOSTNAME'], 'greeting': outputs['var']['GREETING'],
                    'unset': outputs['var']['UNSET'], 'report': outputs['report'],
                    'retcode': outputs['retcode']}
    """)
    ended = run_flow("ssh-cloudomation", {"port": sshd.port, "hostkey": sshd.hostkey,
                                          "username": sshd.user, "password": sshd.password})
    assert ended.status == "ENDED_SUCCESS", ended.message
    out = ended.output_value
    assert out["host"] == "web-1" and out["greeting"] == "hello\nworld"
    assert out["unset"] == "" and out["retcode"] == 0
    # The report is what the script wrote, without the lines that carried the variables.
    assert out["report"] == "working\na warning\n"


def test_ssh_output_vars_keep_the_scripts_exit_code(make_flow, run_flow, sshd):
    make_flow("ssh-fails", """
        def handler(system, this, inputs):
            this.connect(connector_type='SSH', **inputs, script='X=1\\n#OUTPUT_VAR(X)\\nexit 4')
    """)
    ended = run_flow("ssh-fails", {"hostname": "127.0.0.1", "port": sshd.port,
                                   "username": sshd.user, "password": sshd.password})
    assert ended.status == "ENDED_ERROR"
    assert "script exited with code 4" in ended.message


def test_smtp_inputs_dict_with_from_as_the_old_task_form(make_flow, run_flow):
    with smtp_server() as peer:
        make_flow("smtp-cloudomation", """
            def handler(system, this):
                port = this.get('input_value')['port']
                this.task('SMTP', inputs={
                    'host': '127.0.0.1', 'port': port,
                    'from': 'engine@example.org',
                    'to': ['ann@example.org'], 'cc': 'cat@example.org', 'bcc': ['bo@example.org'],
                    'subject': 'Report',
                    'text': 'all good', 'html': '<p>all <b>good</b></p>',
                    'attachments': [
                        {'filename': 'numbers.csv', 'content': 'a,b\\n1,2\\n'},
                        {'filename': 'logo.png', 'content_base64': 'iVBORw0KGgo='},
                    ],
                })
                return this.success('sent')
        """)
        ended = run_flow("smtp-cloudomation", {"port": peer.port})
        assert ended.status == "ENDED_SUCCESS", ended.message
        envelope = peer.messages[0]
        assert envelope.mail_from == "engine@example.org"
        assert sorted(envelope.rcpt_tos) == ["ann@example.org", "bo@example.org",
                                             "cat@example.org"]
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert message["Subject"] == "Report" and message["Cc"] == "cat@example.org"
        assert "Bcc" not in message
        plain, html = message.get_body(("plain",)), message.get_body(("html",))
        assert plain is not None and plain.get_content().strip() == "all good"
        assert html is not None and "<b>good</b>" in html.get_content()
        attached = {part.get_filename(): (part.get_content_type(), part.get_content())
                    for part in message.iter_attachments()}
        assert attached == {"numbers.csv": ("text/csv", "a,b\n1,2\n"),
                            "logo.png": ("image/png", b"\x89PNG\r\n\x1a\n")}
