"""A BaseException from flow code ends its execution at once, and the pool process lives on."""

from __future__ import annotations

import time

import pytest

from executions.models import ExecutionLog

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _pool_children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(p) for p in f.read().split()}


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        ("BaseException('base')", "BaseException: base raised by the flow (line 5 of <flow raiser>)"),
        ("KeyboardInterrupt()", "KeyboardInterrupt raised by the flow (line 5 of <flow raiser>)"),
        ("GeneratorExit('gen')", "GeneratorExit: gen raised by the flow (line 5 of <flow raiser>)"),
    ],
)
def test_a_base_exception_ends_the_execution_at_once_naming_it_and_its_line(
    make_flow, api, worker, raised, message
) -> None:
    make_flow("raiser", f"""
        def handler(system, this):
            this.log('before')
            if True:
                raise {raised}
    """)
    make_flow("next-one", "def handler(system, this):\n    return {'ok': True}\n")
    children = _pool_children(worker.pid)

    began = time.monotonic()
    answer = api.post("/api/executions/", {"flow": "raiser", "wait": 30}, format="json")
    elapsed = time.monotonic() - began

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "ENDED_ERROR"
    assert body["message"] == message
    assert elapsed < 10  # not left RUNNING until "worker lost"
    traceback = ExecutionLog.objects.get(execution_id=body["id"], level="ERROR").text
    assert "line 5" in traceback
    # The same pool processes serve the next execution: none was killed and replaced.
    after = api.post("/api/executions/", {"flow": "next-one", "wait": 30}, format="json").json()
    assert after["status"] == "ENDED_SUCCESS" and after["output_value"] == {"ok": True}
    assert worker.process.poll() is None
    assert _pool_children(worker.pid) == children


def test_sys_exit_inside_the_flow_still_ends_it_in_error_naming_the_code(make_flow, api, worker):
    make_flow("quitter", """
        import sys

        def handler(system, this):
            sys.exit('bye')
    """)
    children = _pool_children(worker.pid)

    body = api.post("/api/executions/", {"flow": "quitter", "wait": 30}, format="json").json()

    assert body["status"] == "ENDED_ERROR"
    assert body["message"] == "the flow called sys.exit('bye') (line 5 of <flow quitter>)"
    assert _pool_children(worker.pid) == children


def test_a_base_exception_while_loading_the_script_ends_it_in_error_too(make_flow, api, worker):
    make_flow("loader", """
        raise KeyboardInterrupt('at import')

        def handler(system, this):
            return None
    """)
    children = _pool_children(worker.pid)

    body = api.post("/api/executions/", {"flow": "loader", "wait": 30}, format="json").json()

    assert body["status"] == "ENDED_ERROR"
    assert body["message"] == (
        "KeyboardInterrupt: at import raised by the flow (line 2 of <flow loader>)"
    )
    assert _pool_children(worker.pid) == children
