"""A flow's concurrency limit holds across all workers; the others wait PENDING, in order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from django.db import transaction

from executions import engine
from executions.engine import workers_status
from executions.engine.records import execution_json
from executions.models import Execution

from ..workers import Worker, running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

ENV = {"AUTOMATION_SAFETY_POLL_SECONDS": "0.2"}

SHORT = """
import os, time

def handler(system, this, inputs):
    time.sleep(inputs.get('seconds', 0))
    return {'worker': os.environ['AUTOMATION_TEST_WORKER'], 'host': os.environ['HOME']}
"""


@pytest.fixture(scope="module")
def two_workers(
    django_db_setup: None, redis_flushed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, Worker]]:
    """Two workers of the group `limited`, 2 slots each: more room than the limits tested."""
    tmp = tmp_path_factory.mktemp("limit-workers")
    with (
        running_worker(queues=["limited.productive"], concurrency=2, name="left", tmp_dir=tmp, extra_env=ENV) as left,
        running_worker(queues=["limited.productive"], concurrency=2, name="right", tmp_dir=tmp, extra_env=ENV) as right,
    ):
        yield left, right


def _most_at_once(executions: list[Execution]) -> int:
    """The largest number of executions whose [started_at, ended_at] overlap."""
    edges: list[tuple[datetime, int]] = []
    for e in executions:
        assert e.started_at is not None and e.ended_at is not None
        edges += [(e.started_at, 1), (e.ended_at, -1)]
    running = most = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # ends before starts
        running += step
        most = max(most, running)
    return most


@pytest.mark.parametrize("starts", [30, pytest.param(200, marks=pytest.mark.slow)])
def test_the_limit_holds_across_two_workers_under_simultaneous_starts(
    two_workers, make_flow, starts
):
    make_flow("two-at-a-time", SHORT, queue="limited", concurrency_limit=2)
    with transaction.atomic():  # all started at once: their messages go out on commit
        started = [
            engine.start_execution(flow="two-at-a-time", input_value={"seconds": 0.01})
            for _ in range(starts)
        ]
    ids = [e.pk for e in started]
    ended = engine.wait_for(ids, timeout=110)

    assert [e.status for e in ended] == ["ENDED_SUCCESS"] * starts
    assert _most_at_once(ended) == 2  # never more, and the two slots were used
    ran_on = {e.output_value["worker"] for e in ended}
    assert ran_on == {w.name for w in two_workers}  # both workers took part
    by_start = sorted(ended, key=lambda e: e.started_at)  # type: ignore[arg-type, return-value]
    assert [e.pk for e in by_start] == sorted(ids)  # oldest first


def test_a_waiting_execution_says_its_flow_is_at_its_limit_and_starts_when_the_slot_frees(
    two_workers, make_flow
):
    make_flow("one-at-a-time", SHORT, queue="limited", concurrency_limit=1)
    first = engine.start_execution(flow="one-at-a-time", input_value={"seconds": 60})
    wait_until(lambda: Execution.objects.get(pk=first.pk).status == "RUNNING", 30)
    second = engine.start_execution(flow="one-at-a-time")
    workers_status.served_queues(refresh=True)

    time.sleep(0.5)  # both workers have free slots, yet the second waits for the first
    assert Execution.objects.get(pk=second.pk).status == "PENDING"
    assert execution_json(Execution.objects.get(pk=second.pk))["waiting_reason"] == (
        "flow 'one-at-a-time' is at its concurrency limit (1 of 1 running)"
    )

    engine.cancel_execution(first.pk)  # a cancelled execution frees its slot too
    ended = engine.wait_for([second.pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS"
    assert Execution.objects.get(pk=first.pk).status == "ENDED_CANCELLED"


def test_synchronous_children_run_inline_only_as_far_as_their_flow_s_limit_allows(
    two_workers, make_flow
):
    make_flow("limited-child", SHORT, queue="limited", concurrency_limit=1)
    make_flow("waits-for-child", """
        import os

        def handler(system, this):
            child = this.flow('limited-child', seconds=0.3).get('output_value')
            return {'child_host': child['host'], 'me': os.environ['HOME']}
    """, queue="limited")
    # Four parents take all four worker slots: at first their children can only run inline.
    with transaction.atomic():
        parents = [engine.start_execution(flow="waits-for-child") for _ in range(4)]
    ended = engine.wait_for([p.pk for p in parents], timeout=60)

    assert [p.status for p in ended] == ["ENDED_SUCCESS"] * 4, [p.message for p in ended]
    # The first child runs inline in its parent; the others wait for the slot, then run
    # inline too or on a slot a finished parent freed.
    assert any(p.output_value["child_host"] == p.output_value["me"] for p in ended)
    children = list(Execution.objects.filter(parent__in=parents))
    assert len(children) == 4
    assert _most_at_once(children) == 1
