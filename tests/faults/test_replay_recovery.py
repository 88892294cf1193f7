"""Deploys kill no flow: a flow with `recovery: replay` survives its worker's SIGTERM or
SIGKILL by replaying its handler on another worker, and no child runs twice. Without it
(`fail`, the default) the same loss ends the execution in error; with a retry policy that
retries "WorkerLost", its next attempt starts."""

from __future__ import annotations

import signal

import pytest

from executions import engine
from executions.models import Execution, ExecutionLog, Setting

from ..workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

QUEUE = "replay"
# Heartbeats often enough that a worker's death is noticed within seconds (by the next
# worker's reconciler pass after its start).
ENV = {"AUTOMATION_HEARTBEAT_SECONDS": "0.3", "AUTOMATION_WORKER_LOST_SECONDS": "2",
       "AUTOMATION_SAFETY_POLL_SECONDS": "0.2"}

COUNTED = """
def handler(system, this, inputs):
    runs = system.setting(f"runs-{inputs['n']}")
    runs.save((runs.get('value') or 0) + 1)
    return {'n': inputs['n']}
"""
REPLAYER = """
import time

def handler(system, this):
    first = this.flow('counted', n=1)
    this.log('first child done')
    time.sleep(4)  # plain Python: it runs again on replay
    second = this.flow('counted', n=2)
    return {'children': [first.get('output_value')['n'], second.get('output_value')['n']]}
"""


@pytest.fixture
def flows(make_flow):
    make_flow("counted", COUNTED, queue=QUEUE)
    make_flow("replayer", REPLAYER, queue=QUEUE, recovery="replay")


def _mid_way(execution: Execution) -> bool:
    return ExecutionLog.objects.filter(execution=execution, text="first child done").exists()


def _runs(n: int) -> object:
    return Setting.objects.get(name=f"runs-{n}").value


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_replay_flow_survives_its_worker_with_no_child_run_twice(
    flows, django_db_setup, redis_flushed, tmp_path, sig
):
    with running_worker(queues=[f"{QUEUE}.productive"], concurrency=1, name=f"old-{sig.name}",
                        tmp_dir=tmp_path, extra_env=ENV) as old:
        started = engine.start_execution(flow="replayer")
        wait_until(lambda: _mid_way(started), 30)
        old.process.send_signal(sig)  # a deploy (SIGTERM), or the machine losing it
        old.process.wait(timeout=30)
    with running_worker(queues=[f"{QUEUE}.productive"], concurrency=1, name=f"new-{sig.name}",
                        tmp_dir=tmp_path, extra_env=ENV):
        ended = engine.wait_for([started.pk], timeout=60)[0]

    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"children": [1, 2]}
    assert (_runs(1), _runs(2)) == (1, 1)  # each child ran once
    assert Execution.objects.filter(parent=ended).count() == 2
    logs = list(ExecutionLog.objects.filter(execution=ended).values_list("text", flat=True))
    assert any("replaying its handler" in t for t in logs)


def test_without_replay_the_lost_flow_ends_in_error_or_retries_on_worker_lost(
    make_flow, django_db_setup, redis_flushed, tmp_path
):
    make_flow("counted", COUNTED, queue=QUEUE)
    make_flow("fails", REPLAYER, queue=QUEUE)
    make_flow("retries", REPLAYER, queue=QUEUE,
              retry_policy={"max_attempts": 2, "initial_delay": 0.1, "retry_on": ["WorkerLost"]})
    with running_worker(queues=[f"{QUEUE}.productive"], concurrency=2, name="lost",
                        tmp_dir=tmp_path, extra_env=ENV) as old:
        fails, retries = engine.start_execution(flow="fails"), engine.start_execution(flow="retries")
        wait_until(lambda: _mid_way(fails) and _mid_way(retries), 30)
        old.process.send_signal(signal.SIGKILL)
        old.process.wait(timeout=30)
    with running_worker(queues=[f"{QUEUE}.productive"], concurrency=2, name="after-loss",
                        tmp_dir=tmp_path, extra_env=ENV):
        fails, retries = engine.wait_for([fails.pk, retries.pk], timeout=60)

    assert fails.status == "ENDED_ERROR" and fails.message.startswith("worker lost")
    assert retries.status == "ENDED_SUCCESS" and retries.attempt == 2
    assert retries.previous_attempts[0]["status_message"].startswith("worker lost")
