"""Durable timers: a long `this.sleep` holds no worker process and survives its worker.

The workers here park a sleep longer than 2 s (AUTOMATION_PARK_AFTER_SECONDS), so that a
sleep of 20 s is parked at once; their timer loops resume it when it is due.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from executions import engine
from executions.models import Execution, ExecutionLog

from ..workers import Worker, running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ENV = {"AUTOMATION_PARK_AFTER_SECONDS": "2", "AUTOMATION_SAFETY_POLL_SECONDS": "0.2"}
QUEUE = "sleepy"

SLEEPER = """
import time

def handler(system, this, inputs):
    this.log('before')
    this.sleep(inputs['seconds'])
    this.log('after')
    return {'slept': inputs['seconds']}
"""


@pytest.fixture
def sleepy_worker(django_db_setup: None, redis_flushed: None, tmp_path) -> Iterator[Worker]:
    with running_worker(queues=[f"{QUEUE}.productive"], concurrency=2, name="sleepy",
                        tmp_dir=tmp_path, extra_env=ENV) as worker:
        yield worker


def _elapsed(execution: Execution) -> float:
    execution.refresh_from_db()
    assert execution.started_at and execution.ended_at
    return (execution.ended_at - execution.created_at).total_seconds()


def test_three_long_sleeps_on_two_processes_hold_neither_and_end_on_time(sleepy_worker, make_flow):
    make_flow("sleeper", SLEEPER, queue=QUEUE)
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n", queue=QUEUE)
    with transaction.atomic():
        sleepers = [engine.start_execution(flow="sleeper", input_value={"seconds": 20}) for _ in range(3)]
    wait_until(lambda: Execution.objects.filter(pk__in=[s.pk for s in sleepers], parked=True).count() == 3, 15)
    parked = Execution.objects.get(pk=sleepers[0].pk)
    assert parked.status == "WAITING" and parked.waiting_reason.startswith("sleeping until ")

    started = time.monotonic()
    quick = engine.start_execution(flow="quick")
    assert engine.wait_for([quick.pk], timeout=10)[0].status == "ENDED_SUCCESS"
    assert time.monotonic() - started < 5  # both processes are free while three flows sleep

    ended = engine.wait_for([s.pk for s in sleepers], timeout=40)
    assert [e.status for e in ended] == ["ENDED_SUCCESS"] * 3
    for execution in ended:
        assert 20 <= _elapsed(execution) <= 21.5, _elapsed(execution)
        logs = list(ExecutionLog.objects.filter(execution=execution).values_list("text", flat=True))
        assert logs.count("before") == 1 and logs.count("after") == 1  # replayed, not repeated


def test_a_parked_sleeper_survives_the_sigkill_of_its_worker(django_db_setup, redis_flushed, make_flow, tmp_path):
    make_flow("sleeper", SLEEPER, queue=QUEUE)
    with running_worker(queues=[f"{QUEUE}.productive"], concurrency=1, name="doomed-sleeper",
                        tmp_dir=tmp_path, extra_env=ENV) as doomed:
        sleeper = engine.start_execution(flow="sleeper", input_value={"seconds": 8})
        wait_until(lambda: Execution.objects.get(pk=sleeper.pk).parked, 15)
        doomed.stop(signal.SIGKILL)
    with running_worker(queues=[f"{QUEUE}.productive"], concurrency=1, name="heir",
                        tmp_dir=tmp_path, extra_env=ENV):
        ended = engine.wait_for([sleeper.pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS" and ended.output_value == {"slept": 8}
    assert 8 <= _elapsed(ended) <= 9.5


def test_a_short_sleep_parks_when_its_worker_is_stopped_and_resumes_elsewhere(
    django_db_setup, redis_flushed, make_flow, tmp_path
):
    make_flow("sleeper", SLEEPER, queue=QUEUE)
    env = {**ENV, "AUTOMATION_PARK_AFTER_SECONDS": "60", "AUTOMATION_SHUTDOWN_GRACE_SECONDS": "30"}
    with running_worker(queues=[f"{QUEUE}.productive"], concurrency=1, name="deployed",
                        tmp_dir=tmp_path, extra_env=env) as old:
        sleeper = engine.start_execution(flow="sleeper", input_value={"seconds": 6})
        wait_until(lambda: Execution.objects.get(pk=sleeper.pk).status == "WAITING", 15)
        assert Execution.objects.get(pk=sleeper.pk).wake_at is not None  # in a sleep, here
        stopping = time.monotonic()
        old.process.send_signal(signal.SIGTERM)  # a deploy: its main process is told to stop
        old.process.wait(timeout=20)
        assert time.monotonic() - stopping < 5  # without waiting for the sleep
    parked = Execution.objects.get(pk=sleeper.pk)
    assert parked.parked, (parked.status, parked.message)
    with running_worker(queues=[f"{QUEUE}.productive"], concurrency=1, name="new-image",
                        tmp_dir=tmp_path, extra_env=env):
        ready = timezone.now()
        ended = engine.wait_for([sleeper.pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS"
    due = max(ended.created_at + timedelta(seconds=6), ready)  # due, and a worker is there
    assert _elapsed(ended) >= 6
    assert ended.ended_at is not None and ended.ended_at <= due + timedelta(seconds=1.5)


def test_a_parent_waiting_long_for_a_child_of_another_group_parks_and_frees_its_process(
    django_db_setup, redis_flushed, make_flow, tmp_path
):
    make_flow("slow-child", "import time\n\ndef handler(system, this):\n    time.sleep(6)\n    return {'done': 1}\n",
              queue="late")
    make_flow("waits-elsewhere", """
        def handler(system, this):
            child = this.flow('slow-child')
            return {'child': child.get('output_value')}
    """, queue=QUEUE)
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n", queue=QUEUE)
    with (
        running_worker(queues=[f"{QUEUE}.productive"], concurrency=1, name="parent-side",
                       tmp_dir=tmp_path, extra_env=ENV),
        running_worker(queues=["late.productive"], concurrency=1, name="child-side",
                       tmp_dir=tmp_path, extra_env=ENV),
    ):
        parent = engine.start_execution(flow="waits-elsewhere")
        waiting = wait_until(lambda: Execution.objects.filter(pk=parent.pk, parked=True).first(), 15)
        assert waiting.waiting_reason.startswith("parked: it goes on when the child it awaits ends")
        quick = engine.start_execution(flow="quick")  # the parent's only process is free
        assert engine.wait_for([quick.pk], timeout=10)[0].status == "ENDED_SUCCESS"
        ended = engine.wait_for([parent.pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS" and ended.output_value == {"child": {"done": 1}}
    assert Execution.objects.filter(parent=ended).count() == 1  # the child ran once
