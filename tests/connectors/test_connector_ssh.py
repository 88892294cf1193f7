"""The SSH connector against an SSH server (paramiko) started by the test that runs commands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from executions import engine
from executions.models import Execution, ExecutionLog

from ..connector_peers import SshPeer, ed25519_openssh, ssh_server
from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture
def sshd() -> Iterator[SshPeer]:
    with ssh_server() as peer:
        yield peer


def target(peer: SshPeer, **inputs: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": peer.port, "username": peer.user, **inputs}


def ssh(inputs: dict[str, Any], timeout: float = 30) -> Execution:
    execution = engine.start_execution(type="CONNECTION", connector_type="SSH",
                                         input_value=inputs)
    ended = engine.wait_for([execution.pk], timeout=timeout)[0]
    assert ended.is_ended, f"still {ended.status}"
    return ended


def test_a_flow_runs_a_script_with_a_password_and_a_checked_host_key(make_flow, run_flow, sshd):
    make_flow("ssh-script", """
        def handler(system, this, inputs):
            out = this.connect(connector_type='SSH', **inputs['target'],
                               script='echo hello; echo oops >&2; echo "$((6 * 7))"')
            return out.get('output_value')
    """)
    ended = run_flow("ssh-script", {"target": target(sshd, password=sshd.password,
                                                     hostkey=sshd.hostkey)})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"retcode": 0, "stdout": "hello\n42\n", "stderr": "oops\n",
                                  "report": "hello\n42\noops\n"}


def test_commands_run_in_turn_with_key_auth_and_stop_at_the_first_failure(sshd):
    ended = ssh(target(sshd, key=sshd.client_key,
                       commands=["echo one", "exit 3", "echo never"]))
    assert ended.status == "ENDED_ERROR"
    assert ended.message == (
        f"ConnectorError: SSH {sshd.user}@127.0.0.1:{sshd.port}: command 2 of 3 exited with code 3"
    )
    assert ended.output_value["retcode"] == 3
    assert [r["stdout"] for r in ended.output_value["results"]] == ["one\n", ""]
    assert sshd.commands == ["echo one", "exit 3"]

    tolerant = ssh(target(sshd, key=sshd.client_key, commands=["exit 3", "echo two"],
                          expected_retcode=[0, 3]))
    assert tolerant.status == "ENDED_SUCCESS", tolerant.message
    assert tolerant.output_value["stdout"] == "two\n"


def test_a_wrong_host_key_refuses_the_server_before_anything_runs(sshd):
    _, other = ed25519_openssh()
    ended = ssh(target(sshd, password=sshd.password, hostkey=other, script="touch /tmp/x"))
    assert ended.status == "ENDED_ERROR"
    assert "the server's host key is not the one given in hostkey" in ended.message
    assert sshd.commands == []


def test_a_missing_host_key_is_logged_with_the_key_the_server_offered(sshd):
    ended = ssh(target(sshd, password=sshd.password, script="true"))
    assert ended.status == "ENDED_SUCCESS", ended.message
    warning = ExecutionLog.objects.get(execution=ended, level="WARNING")
    assert "host key not checked" in warning.text and sshd.hostkey in warning.text


def test_a_wrong_password_ends_in_error_without_showing_it(sshd):
    ended = ssh(target(sshd, password="wrong-pass-77", script="true"))
    assert ended.status == "ENDED_ERROR"
    assert ended.message.endswith(": authentication failed")
    assert ended.input_value["password"] == "********"
    assert "wrong-pass-77" not in str(ended.input_value) + ended.message


def test_a_script_longer_than_the_timeout_is_ended(sshd):
    started = time.monotonic()
    ended = ssh(target(sshd, password=sshd.password, script="echo started; sleep 20",
                       timeout=1))
    assert time.monotonic() - started < 10
    assert ended.status == "ENDED_ERROR"
    assert ended.message.endswith("timed out after 1 s")
    assert ended.output_value["stdout"] == "started\n"
    wait_until(lambda: sshd.closed_early, timeout=5)


def test_cancelling_a_connection_stuck_in_ssh_ends_it_and_closes_the_channel(sshd):
    execution = engine.start_execution(
        type="CONNECTION", connector_type="SSH",
        input_value=target(sshd, password=sshd.password, script="sleep 30"),
    )
    wait_until(lambda: sshd.started.is_set(), timeout=20)
    time.sleep(0.2)  # in the connector's wait for output
    cancelled_at = time.monotonic()
    engine.cancel_execution(execution)
    wait_until(lambda: sshd.closed_early, timeout=2)
    assert sshd.closed_early[0][0] == "sleep 30"
    assert sshd.closed_early[0][1] - cancelled_at < 2
    ended = Execution.objects.get(pk=execution.pk)
    assert ended.status == "ENDED_CANCELLED"
    # The worker is free again at once.
    again = ssh(target(sshd, password=sshd.password, script="echo free"), timeout=10)
    assert again.output_value["stdout"] == "free\n"
