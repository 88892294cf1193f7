"""Flows that misbehave end ENDED_ERROR with a clear message, and the worker lives on."""

from __future__ import annotations

import pytest

from executions import engine
from executions.models import Execution, ExecutionLog

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _report(what: str, execution: Execution) -> None:
    print(f"{what}: execution {execution.pk} {execution.status}: {execution.message[:200]}")


def _worker_still_serves(make_flow, run_flow) -> None:  # type: ignore[no-untyped-def]
    make_flow("still-alive", "def handler(system, this):\n    return {'ok': True}\n")
    after = run_flow("still-alive", timeout=30)
    assert after.status == "ENDED_SUCCESS" and after.output_value == {"ok": True}


def test_a_flow_logging_50_mb_is_cut_short_and_ends_in_error(make_flow, run_flow, settings) -> None:
    make_flow("chatty", """
        def handler(system, this):
            line = 'x' * (1024 * 1024)
            for _ in range(50):
                this.log(line)
    """)
    ended = run_flow("chatty", timeout=60)
    _report("50 MB of log", ended)
    entry_max = settings.AUTOMATION["LOG_ENTRY_MAX_BYTES"]
    total_max = settings.AUTOMATION["LOG_MAX_BYTES"]
    assert ended.status == "ENDED_ERROR"
    assert "log of this execution passed its limit" in ended.message
    logs = list(ExecutionLog.objects.filter(execution=ended).values_list("text", flat=True))
    stored = sum(len(t) for t in logs)
    print(f"  {len(logs)} entries stored, {stored} bytes in all")
    assert stored <= total_max + entry_max
    assert all(len(t) <= entry_max + 200 for t in logs)
    assert "[log entry truncated: 1048576 bytes" in logs[0]
    _worker_still_serves(make_flow, run_flow)


def test_a_flow_logging_50_mb_as_keyword_data_is_refused_too(make_flow, run_flow) -> None:
    make_flow("data-hoarder", """
        def handler(system, this):
            this.log('big', blob='y' * (50 * 1024 * 1024))
    """)
    ended = run_flow("data-hoarder", timeout=60)
    _report("50 MB of log data", ended)
    assert ended.status == "ENDED_ERROR"
    # Refused in the flow's own host, before it reaches the engine, naming the limit.
    assert "arguments of this log call are" in ended.message and "over the limit" in ended.message
    assert "(line 3 of <flow data-hoarder>)" in ended.message
    assert not ExecutionLog.objects.filter(execution=ended, text="big").exists()
    _worker_still_serves(make_flow, run_flow)


def test_a_flow_returning_a_set_ends_in_error_saying_it_is_not_json(make_flow, run_flow) -> None:
    make_flow("setty", """
        def handler(system, this):
            return {'tags': {'a', 'b'}}
    """)
    ended = run_flow("setty")
    _report("output with a set", ended)
    assert ended.status == "ENDED_ERROR"
    assert "JSON" in ended.message and "set" in ended.message
    assert "engine error" not in ended.message  # the flow is to blame, and the message says so
    _worker_still_serves(make_flow, run_flow)


def test_a_flow_recursing_without_end_ends_in_error_naming_its_line(make_flow, run_flow) -> None:
    make_flow("bottomless", """
        def down(n):
            return down(n + 1)

        def handler(system, this):
            down(0)
    """)
    ended = run_flow("bottomless")
    _report("endless recursion", ended)
    assert ended.status == "ENDED_ERROR"
    assert ended.message.startswith("RecursionError")
    assert "line 3 of <flow bottomless>" in ended.message  # the `return down(n + 1)` line
    _worker_still_serves(make_flow, run_flow)


def test_a_flow_calling_sys_exit_ends_in_error_and_the_worker_lives_on(
    make_flow, run_flow, worker
) -> None:
    make_flow("quitter", """
        import sys

        def handler(system, this):
            sys.exit(3)
    """)
    pid_before = worker.pid
    ended = run_flow("quitter")
    _report("sys.exit(3)", ended)
    assert ended.status == "ENDED_ERROR"
    assert ended.message == "the flow called sys.exit(3) (line 5 of <flow quitter>)"
    assert worker.process.poll() is None and worker.pid == pid_before
    _worker_still_serves(make_flow, run_flow)


def test_a_flow_calling_os_exit_ends_in_error_and_its_worker_process_goes_on(
    make_flow, run_flow, worker
) -> None:
    make_flow("vanisher", """
        import os

        def handler(system, this):
            os._exit(7)
    """)
    children_before = _pool_children(worker.pid)
    execution = engine.start_execution(flow="vanisher")
    ended = engine.wait_for([execution.pk], timeout=30)[0]
    _report("os._exit(7)", ended)
    assert ended.status == "ENDED_ERROR"
    assert ended.message.startswith("the flow's process exited with code 7")
    # Only the flow's own host went: the worker's pool processes are the same ones.
    assert worker.process.poll() is None
    assert _pool_children(worker.pid) == children_before
    # Other executions are not lost: a burst after the crash all complete.
    make_flow("after-crash", "def handler(system, this, inputs):\n    return {'n': inputs['n']}\n")
    started = [engine.start_execution(flow="after-crash", input_value={"n": n}) for n in range(10)]
    done = engine.wait_for([e.pk for e in started], timeout=60)
    statuses = [e.status for e in done]
    print(f"  after the crash: started 10, completed {statuses.count('ENDED_SUCCESS')}, lost 0")
    assert statuses == ["ENDED_SUCCESS"] * 10
    assert sorted(e.output_value["n"] for e in done) == list(range(10))


def _pool_children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []




def test_a_child_named_by_something_else_than_a_string_is_refused_naming_the_flow(
    make_flow, run_flow
) -> None:
    make_flow("odd-names", """
        def handler(system, this):
            refused = []
            for name in (['a', 'b'], {'name': 'a'}, 2.5, True):
                try:
                    this.flow(name)
                except Exception as exc:
                    refused.append(f'{type(exc).__name__}: {exc}')
            return {'refused': refused}
    """)
    ended = run_flow("odd-names")
    _report("children named by a list, a dict, a float, a bool", ended)
    assert ended.status == "ENDED_SUCCESS", ended.message
    refused = ended.output_value["refused"]
    assert len(refused) == 4, refused
    assert all(r.startswith("FlowApiError: flow: ") for r in refused), refused  # not InternalError
