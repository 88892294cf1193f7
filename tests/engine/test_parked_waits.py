"""Parked waits: a flow waiting for a message form's answer survives its worker stopping or
dying, and a long wait frees its worker process. Real workers, stopped and killed for real."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from executions import engine
from executions.engine.reconciler import reconcile
from executions.models import Execution, ExecutionLog, Flow, Message

from ..workers import running_worker, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]

QUEUE = "parking"
CHILD = """
def handler(system, this):
    return {'doubled': this.get('input_value')['n'] * 2}
"""
# Starts a child before it asks, so that a resumed run shows it does not start it again.
ASKER = """
def handler(system, this):
    child = this.flow('double', n=21)
    this.log('asking now')
    answer = this.message('Who?', request='Name?', timeout=TIMEOUT)
    return {'name': answer['string'], 'doubled': child.get('output_value')['doubled']}
"""
# The message waiter runs inline in its parent: both must park and come back.
PARENT = """
def handler(system, this):
    asked = this.flow('asker')
    return {'from_child': asked.get('output_value')['name']}
"""


def _flows(make_flow: Any, timeout: float | None = None) -> None:
    make_flow("double", CHILD, queue=QUEUE)
    make_flow("asker", ASKER.replace("TIMEOUT", repr(timeout)), queue=QUEUE)
    make_flow("parent", PARENT, queue=QUEUE)


def _worker(tmp_path: Any, name: str, **env: str) -> Any:
    return running_worker(
        queues=[f"{QUEUE}.productive"], concurrency=1, name=name, tmp_dir=tmp_path,
        extra_env={"AUTOMATION_HEARTBEAT_SECONDS": "0.5", **env},
    )


def _open_message(root: Execution) -> Message:
    return wait_until(
        lambda: Message.objects.filter(
            execution__in=Execution.objects.filter(pk=root.pk) | Execution.objects.filter(root=root),
            status="open",
        ).first(),
        timeout=30,
    )


def _answer(api: Any, message: Message, name: str) -> None:
    answer = api.post(f"/api/messages/{message.pk}/respond/", {"response": {"string": name}},
                      format="json")
    assert answer.status_code == 200, answer.json()


def _parked(pk: int) -> bool:
    return Execution.objects.filter(pk=pk, status="WAITING", parked=True).exists()


def _killed_while_waiting(flow: str, tmp_path: Any) -> tuple[Execution, Message]:
    """Start `flow` on a worker of its own, SIGKILL the worker once a form waits."""
    worker = start_worker(
        queues=[f"{QUEUE}.productive"], concurrency=1, name=f"park-kill-{flow}", tmp_dir=tmp_path,
        extra_env={"AUTOMATION_HEARTBEAT_SECONDS": "0.5"},
    )
    try:
        execution = engine.start_execution(flow=flow)
        message = _open_message(execution)
        waiter_id = message.execution_id
        assert waiter_id is not None
        waiter = Execution.objects.filter(pk=waiter_id)
        wait_until(lambda: waiter.filter(status="WAITING").exists(), 10)
    finally:
        worker.stop(signal.SIGKILL)
    return execution, message


def _assert_nothing_doubled(root: Execution) -> None:
    tree = Execution.objects.filter(pk=root.pk) | Execution.objects.filter(root=root)
    names = sorted(tree.values_list("name", flat=True))
    assert names.count("double") == 1, names
    assert Message.objects.filter(execution__in=tree).count() == 1
    asked = ExecutionLog.objects.filter(execution__in=tree, text="asking now").count()
    assert asked == 1, "a resumed handler logged again what it had logged before its wait"


def test_a_message_wait_survives_a_worker_restart(make_flow, api, tmp_path):
    _flows(make_flow)
    with _worker(tmp_path, "park-a") as first:
        execution = engine.start_execution(flow="asker")
        message = _open_message(execution)
        wait_until(lambda: Execution.objects.get(pk=execution.pk).status == "WAITING", 10)
        started = time.monotonic()
        first.process.send_signal(signal.SIGTERM)
        first.process.wait(timeout=20)
        stopped_after = time.monotonic() - started
    print(f"worker stopped {stopped_after:.1f} s after SIGTERM; the wait parked")
    assert stopped_after < 10  # it parked at once, not after the shutdown grace
    assert _parked(execution.pk)
    assert Message.objects.get(pk=message.pk).status == "open"
    shown = api.get(f"/api/executions/{execution.pk}/").json()
    assert shown["status"] == "WAITING"
    assert shown["waiting_reason"] == (
        f"waiting for the answer to message {message.pk} "
        "(parked: no worker holds it; the answer resumes it)"
    )

    _answer(api, message, "Ada")  # no worker runs now: it is queued for the next one
    with _worker(tmp_path, "park-b"):
        ended = engine.wait_for([execution.pk], timeout=60)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"name": "Ada", "doubled": 42}
    assert ended.resumes == 1
    _assert_nothing_doubled(execution)


def test_a_killed_worker_parks_an_inline_wait_and_its_parent(make_flow, api, tmp_path, settings):
    # This process answers the message: with heartbeats every 0.5 s it tells a dead wait
    # after 2 s (executions.parking.wait_lost_seconds).
    settings.AUTOMATION = {**settings.AUTOMATION, "HEARTBEAT_SECONDS": 0.5}
    _flows(make_flow)
    parent, message = _killed_while_waiting("parent", tmp_path)
    asker = message.execution
    assert asker is not None and asker.parent_id == parent.pk

    time.sleep(2.5)  # the heartbeats are now older than a live wait's ever are
    counts = reconcile()
    print(f"reconciler after SIGKILL: {counts}")
    assert _parked(asker.pk) and _parked(parent.pk)
    assert Execution.objects.filter(status__startswith="ENDED", root=parent).count() == 1  # 'double'

    _answer(api, message, "Grace")
    with _worker(tmp_path, "park-kill-b"):
        ended = engine.wait_for([parent.pk], timeout=60)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"from_child": "Grace"}
    asker.refresh_from_db()
    assert (asker.status, asker.resumes) == ("ENDED_SUCCESS", 1)
    _assert_nothing_doubled(parent)


def test_a_long_wait_parks_and_frees_its_worker_process(make_flow, api, tmp_path):
    _flows(make_flow)
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n", queue=QUEUE)
    with _worker(tmp_path, "park-long", AUTOMATION_PARK_AFTER_SECONDS="1"):
        parent = engine.start_execution(flow="parent")
        message = _open_message(parent)
        wait_until(lambda: _parked(parent.pk), 20)
        # One worker process (-c 1), and the wait no longer holds it.
        quick = engine.wait_for([engine.start_execution(flow="quick").pk], timeout=30)[0]
        assert quick.status == "ENDED_SUCCESS"
        assert _parked(parent.pk)

        _answer(api, message, "Lin")
        ended = engine.wait_for([parent.pk], timeout=60)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"from_child": "Lin"}
    _assert_nothing_doubled(parent)


def test_a_parked_wait_still_times_out(make_flow, tmp_path):
    _flows(make_flow, timeout=2)
    with _worker(tmp_path, "park-timeout", AUTOMATION_PARK_AFTER_SECONDS="0.5"):
        execution = engine.start_execution(flow="asker")
        message = _open_message(execution)
        wait_until(lambda: _parked(execution.pk), 20)
        time.sleep(2)
        reconcile()  # beat's reconciler: expires the form and resumes the flow
        ended = engine.wait_for([execution.pk], timeout=60)[0]
    assert ended.status == "ENDED_ERROR"
    assert "MessageResponseTimeoutError" in ended.message and "not answered within 2 s" in ended.message
    assert Message.objects.get(pk=message.pk).status == "expired"


def test_cancelling_a_parked_wait_ends_it_and_expires_its_form(make_flow, tmp_path):
    _flows(make_flow)
    with _worker(tmp_path, "park-cancel", AUTOMATION_PARK_AFTER_SECONDS="0.5"):
        parent = engine.start_execution(flow="parent")
        message = _open_message(parent)
        wait_until(lambda: _parked(parent.pk), 20)
        engine.cancel_execution(parent.pk)
    parent.refresh_from_db()
    assert parent.status == "ENDED_CANCELLED"
    assert Message.objects.get(pk=message.pk).status == "expired"
    assert not Execution.objects.filter(root=parent, status__in=engine.NOT_ENDED).exists()


def test_an_answer_given_while_no_worker_runs_reaches_the_restarted_worker(make_flow, api, tmp_path):
    """SIGKILL, answer at once (nobody can tell the wait is dead yet), start a new worker:
    its reconciler pass after the start parks the dead wait and resumes it with the answer,
    without beat."""
    _flows(make_flow)
    execution, message = _killed_while_waiting("asker", tmp_path)
    _answer(api, message, "Hedy")
    with _worker(tmp_path, "park-answered-b"):
        ended = engine.wait_for([execution.pk], timeout=60)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"name": "Hedy", "doubled": 42}
    _assert_nothing_doubled(execution)


def test_a_scheduled_flow_that_waits_parks_with_its_firing(make_flow, api, tmp_path):
    from executions.models import Schedule
    from executions.tasks import fire_schedule

    _flows(make_flow)
    schedule = Schedule.objects.create(
        name="ask-daily", flow=Flow.objects.get(name="asker"), cron="0 6 * * *"
    )
    assert schedule.next_fire_at is not None
    with _worker(tmp_path, "park-schedule", AUTOMATION_PARK_AFTER_SECONDS="0.5"):
        fired = fire_schedule(schedule.pk, schedule.next_fire_at.isoformat())
        assert fired is not None
        firing = Execution.objects.get(pk=fired)
        message = _open_message(firing)
        asker = message.execution_id
        assert asker is not None
        wait_until(lambda: _parked(firing.pk) and _parked(asker), 20)
        _answer(api, message, "Ida")
        ended = engine.wait_for([firing.pk], timeout=60)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    flow_run = Execution.objects.get(parent=firing)  # started once, not again on resume
    assert flow_run.output_value == {"name": "Ida", "doubled": 42}
    assert ended.output_value["execution"] == flow_run.pk


def test_a_wait_whose_pool_process_is_killed_parks_and_resumes_on_its_replacement(
    make_flow, api, tmp_path
):
    import os
    import subprocess

    _flows(make_flow)
    # Heartbeats every 5 s: no reconciler pass could tell the wait is dead within the test's
    # bound; it is Celery's main process, seeing its pool process die, that parks it.
    with _worker(tmp_path, "park-oom", AUTOMATION_HEARTBEAT_SECONDS="5") as worker:
        execution = engine.start_execution(flow="asker")
        message = _open_message(execution)
        wait_until(lambda: Execution.objects.get(pk=execution.pk).status == "WAITING", 10)
        pool = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True,
                              timeout=10).stdout.split()
        assert pool, "the worker has no pool process"
        for pid in pool:  # as the OOM killer would
            os.kill(int(pid), signal.SIGKILL)
        # Celery's main process sees the pool process die: the wait is parked, not ended.
        wait_until(lambda: _parked(execution.pk), 10)
        _answer(api, message, "Ken")
        ended = engine.wait_for([execution.pk], timeout=60)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"name": "Ken", "doubled": 42}
    _assert_nothing_doubled(execution)
