"""Cancel cascades within 2 seconds, even into time.sleep and busy loops; timeouts end flows."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from executions import engine
from executions.models import Execution

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]

SLEEPER = """
import time

def handler(system, this):
    time.sleep(3600)
"""
BUSY = """
def handler(system, this):
    n = 0
    while True:
        n += 1
"""
TREE = """
def handler(system, this):
    this.flow('sleeper', wait=False)
    this.flow('busy')
"""


def _status(pk: int) -> str:
    return Execution.objects.values_list("status", flat=True).get(pk=pk)


def test_cancel_ends_a_tree_of_sleeping_and_busy_flows_within_two_seconds(make_flow, run_flow):
    make_flow("sleeper", SLEEPER)
    make_flow("busy", BUSY)
    make_flow("tree", TREE)
    top = engine.start_execution(flow="tree")
    wait_until(lambda: Execution.objects.filter(root=top, status="RUNNING").count() == 2, 30)
    started = time.monotonic()
    cancelled = engine.cancel_execution(top)
    tree = [top.pk, *Execution.objects.filter(root=top).values_list("pk", flat=True)]
    assert sorted(cancelled) == sorted(tree)
    assert engine.wait_stopped(tree, 2)  # each ends once its worker saw its code stop
    assert {_status(pk) for pk in tree} == {"ENDED_CANCELLED"}
    # The worker really stopped running them: its slots serve new work within 2 s.
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n")
    quick = run_flow("quick", timeout=10)
    assert quick.status == "ENDED_SUCCESS"
    assert time.monotonic() - started < 2 + 1  # plus the test's own bookkeeping
    quick2 = run_flow("quick", timeout=10)  # both slots are free again
    assert quick2.status == "ENDED_SUCCESS"


def test_a_cancelled_busy_loop_frees_its_worker_slot(make_flow, run_flow):
    make_flow("busy", BUSY)
    make_flow("quick", "def handler(system, this):\n    pass\n")
    loops = [engine.start_execution(flow="busy") for _ in range(2)]  # occupy both slots
    wait_until(lambda: all(_status(e.pk) == "RUNNING" for e in loops), 30)
    for loop in loops:
        engine.cancel_execution(loop)
    started = time.monotonic()
    assert run_flow("quick", timeout=10).status == "ENDED_SUCCESS"
    assert time.monotonic() - started < 2


def test_a_cancel_whose_notice_was_lost_still_stops_the_flow(make_flow, run_flow, worker):
    """The notice to the worker (Redis pub/sub) may be missed: the worker subscribes only
    once it runs something, and resubscribes after Redis was away. The ended row decides."""
    make_flow("busy", BUSY)
    make_flow("quick", "def handler(system, this):\n    pass\n")
    loops = [engine.start_execution(flow="busy") for _ in range(2)]  # occupy both slots
    wait_until(lambda: all(_status(e.pk) == "RUNNING" for e in loops), 30)
    # One ended elsewhere, one asked to stop as cancel_execution asks, with no notice published.
    Execution.objects.filter(pk=loops[0].pk).update(status="ENDED_CANCELLED")
    Execution.objects.filter(pk=loops[1].pk).update(
        stop_status="ENDED_CANCELLED", stop_requested_at=timezone.now(), message="cancelled"
    )
    assert run_flow("quick", timeout=15).status == "ENDED_SUCCESS"
    assert worker.wait_idle(10)  # both loops stopped: neither process still runs one
    assert {_status(e.pk) for e in loops} == {"ENDED_CANCELLED"}


def test_a_flow_that_cancels_its_child_goes_on(make_flow, run_flow):
    make_flow("sleeper", SLEEPER)
    make_flow("canceller", """
        def handler(system, this):
            child = this.flow('sleeper', wait=False)
            this.sleep(0.3)
            child.cancel()  # back once the child's code has stopped
            at_once = child.get('status')
            ended = this.wait_for(child, return_when=system.return_when.ALL_ENDED)
            return {'at_once': at_once, 'child': ended[0].get('status')}
    """)
    parent = run_flow("canceller")
    assert parent.status == "ENDED_SUCCESS", parent.message
    assert parent.output_value == {"at_once": "ENDED_CANCELLED", "child": "ENDED_CANCELLED"}


def test_a_timeout_ends_the_flow_in_error_and_cancels_its_descendants(make_flow, run_flow):
    make_flow("sleeper", SLEEPER)
    make_flow("impatient", """
        def handler(system, this):
            this.flow('sleeper', wait=False)
            this.flow('sleeper')
    """, timeout=1)
    started = time.monotonic()
    top = run_flow("impatient", timeout=15)
    assert time.monotonic() - started < 5
    assert top.status == "ENDED_ERROR"
    assert top.message == "timed out after 1 s"
    children = Execution.objects.filter(parent=top)
    assert children.count() == 2
    assert engine.wait_stopped(list(children.values_list("pk", flat=True)), 3)
    assert set(children.values_list("status", flat=True)) == {"ENDED_CANCELLED"}


def test_this_sleep_is_waiting_and_cancellable(make_flow):
    make_flow("napper", "def handler(system, this):\n    this.sleep(3600)\n")
    execution = engine.start_execution(flow="napper")
    wait_until(lambda: _status(execution.pk) == "WAITING", 30)
    engine.cancel_execution(execution)
    assert engine.wait_stopped([execution.pk], 2)
    assert _status(execution.pk) == "ENDED_CANCELLED"
