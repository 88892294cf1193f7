"""Several worker processes on one Redis and one PostgreSQL, as separate hosts would run them.

Each worker is its own `celery worker` process group with its own hostname. A flow tells
which worker ran it by returning AUTOMATION_TEST_WORKER, the hostname tests/workers.py lets
through to flows (AUTOMATION_FLOW_ENV), and which flow host ran it by its private HOME.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from executions import engine
from executions.engine.reconciler import reconcile
from executions.models import Execution

from ..workers import Worker, running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

WHOAMI = """
import os, time

def handler(system, this, inputs):
    time.sleep(inputs.get('seconds', 0))
    return {'worker': os.environ['AUTOMATION_TEST_WORKER'], 'host': os.environ['HOME']}
"""

# Heartbeats often enough for a 2 s "worker lost" threshold (see fast_reconciler).
ENV = {"AUTOMATION_HEARTBEAT_SECONDS": "0.3", "AUTOMATION_SAFETY_POLL_SECONDS": "0.3"}


@pytest.fixture(scope="module")
def spread_workers(
    django_db_setup: None, redis_flushed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Worker]]:
    """Two workers of the group `spread`, and one of the group `other`."""
    tmp = tmp_path_factory.mktemp("many-workers")
    with (
        running_worker(queues=["spread.productive"], concurrency=2, name="alpha", tmp_dir=tmp, extra_env=ENV) as alpha,
        running_worker(queues=["spread.productive"], concurrency=2, name="beta", tmp_dir=tmp, extra_env=ENV) as beta,
        running_worker(queues=["other.productive"], concurrency=1, name="gamma", tmp_dir=tmp, extra_env=ENV) as gamma,
    ):
        yield {"alpha": alpha, "beta": beta, "gamma": gamma}


@pytest.fixture
def fast_reconciler(settings: Any) -> None:
    settings.AUTOMATION = {
        **settings.AUTOMATION, "WORKER_LOST_SECONDS": 2.0, "PENDING_RESEND_SECONDS": 0.5,
    }


def _names(workers: dict[str, Worker]) -> dict[str, str]:
    return {w.name: name for name, w in workers.items()}


def test_work_spreads_across_two_workers_of_one_group(spread_workers, make_flow):
    make_flow("whoami", WHOAMI, queue="spread")
    with transaction.atomic():  # all messages go out at once, on commit
        started = [
            engine.start_execution(flow="whoami", input_value={"seconds": 0.3}) for _ in range(8)
        ]
    ended = engine.wait_for([e.pk for e in started], timeout=60)

    assert [e.status for e in ended] == ["ENDED_SUCCESS"] * 8
    ran_on = [_names(spread_workers).get(e.output_value["worker"]) for e in ended]
    assert set(ran_on) == {"alpha", "beta"}  # both took work; gamma serves another group
    assert min(ran_on.count("alpha"), ran_on.count("beta")) >= 2


def test_a_synchronous_child_on_another_group_s_queue_is_awaited_and_runs_on_that_group_s_worker(
    spread_workers, make_flow, run_flow
):
    make_flow("whoami-elsewhere", WHOAMI, queue="other")
    make_flow("whoami-here", WHOAMI, queue="spread")
    make_flow("asks-elsewhere", """
        import os

        def handler(system, this):
            here = this.flow('whoami-here').get('output_value')
            there = this.flow('whoami-elsewhere').get('output_value')
            return {'me': os.environ['HOME'], 'here': here['host'], 'there': there['worker']}
    """, queue="spread")

    parent = run_flow("asks-elsewhere", timeout=30)

    assert parent.status == "ENDED_SUCCESS", parent.message
    out = parent.output_value
    assert out["here"] == out["me"]  # same group: run inline, in the parent's own flow host
    assert _names(spread_workers)[out["there"]] == "gamma"  # other group: its worker ran it
    children = {c.name: c for c in Execution.objects.filter(parent=parent)}
    assert children["whoami-elsewhere"].queue == "other"
    assert children["whoami-elsewhere"].status == "ENDED_SUCCESS"


def test_killing_one_worker_loses_nothing(spread_workers, make_flow, tmp_path, fast_reconciler):
    make_flow("whoami", WHOAMI, queue="spread")
    survivors = _names(spread_workers)
    with running_worker(
        queues=["spread.productive"], concurrency=2, name="doomed", tmp_dir=tmp_path, extra_env=ENV
    ) as doomed:
        with transaction.atomic():
            started = [
                engine.start_execution(flow="whoami", input_value={"seconds": 1.5})
                for _ in range(10)
            ]
        ids = [e.pk for e in started]
        # alpha and beta have 4 slots: a fifth RUNNING one is the doomed worker's.
        wait_until(lambda: Execution.objects.filter(pk__in=ids, status="RUNNING").count() >= 5, 30)
        doomed.stop(signal.SIGKILL)  # it dies with its executions and the messages it held

    def all_ended() -> bool:
        reconcile()  # as beat would, with short thresholds
        return not Execution.objects.filter(pk__in=ids).exclude(status__in=Execution.ENDED).exists()

    wait_until(all_ended, timeout=60, interval=0.5)
    ended = list(Execution.objects.filter(pk__in=ids))
    lost = [e for e in ended if e.status == "ENDED_ERROR"]
    done = [e for e in ended if e.status == "ENDED_SUCCESS"]
    assert 1 <= len(lost) <= 2  # what the dead worker was running, and nothing else
    assert all(e.message.startswith("worker lost") for e in lost)
    assert len(done) == 10 - len(lost)  # the rest ran to the end, none stuck or dropped
    assert {survivors.get(e.output_value["worker"]) for e in done} <= {"alpha", "beta"}
