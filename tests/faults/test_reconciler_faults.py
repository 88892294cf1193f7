"""Nothing is lost: a killed worker's executions end "worker lost", lost messages are re-sent."""

from __future__ import annotations

import signal

import pytest
import redis
from django.conf import settings

from executions import engine
from executions.engine.reconciler import reconcile
from executions.models import Execution

from ..workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]


def _status(pk: int) -> str:
    return Execution.objects.values_list("status", flat=True).get(pk=pk)


@pytest.fixture
def fast_reconciler(settings):  # type: ignore[no-untyped-def]
    settings.AUTOMATION = {
        **settings.AUTOMATION, "WORKER_LOST_SECONDS": 2.0, "PENDING_RESEND_SECONDS": 0.5,
    }


def test_a_killed_worker_s_execution_ends_worker_lost_and_its_parent_hears_it(
    make_flow, run_flow, tmp_path, fast_reconciler
):
    make_flow("stuck", "import time\ndef handler(system, this):\n    time.sleep(3600)\n", queue="doomed")
    make_flow("patient", """
        import flow_api

        def handler(system, this):
            try:
                this.flow('stuck')
            except flow_api.DependencyFailedError as exc:
                return this.error(f'child failed: {exc}')
    """)
    doomed = running_worker(
        queues=["doomed.productive"], concurrency=1, name="doomed", tmp_dir=tmp_path,
        extra_env={"AUTOMATION_HEARTBEAT_SECONDS": "0.3"},
    )
    with doomed as w:
        parent = engine.start_execution(flow="patient")
        child = wait_until(lambda: Execution.objects.filter(parent=parent, status="RUNNING").first(), 30)
        w.stop(signal.SIGKILL)
    wait_until(lambda: reconcile()["lost"] or _status(child.pk) == "ENDED_ERROR", 15, interval=0.5)
    child.refresh_from_db()
    assert child.status == "ENDED_ERROR"
    assert child.message.startswith("worker lost")
    ended = engine.wait_for([parent.pk], timeout=15)[0]
    assert ended.status == "ENDED_ERROR"
    assert "child failed" in ended.message and "worker lost" in ended.message
    # The surviving worker goes on serving.
    make_flow("quick", "def handler(system, this):\n    pass\n")
    assert run_flow("quick", timeout=15).status == "ENDED_SUCCESS"


def test_a_cancel_whose_worker_died_ends_cancelled_by_the_reconciler(make_flow, tmp_path, fast_reconciler):
    """Asked to stop, its worker gone before it could record the end: the reconciler ends
    it as asked once no process beats for it, not "worker lost"."""
    make_flow("stuck", "import time\ndef handler(system, this):\n    time.sleep(3600)\n", queue="doomed")
    doomed = running_worker(
        queues=["doomed.productive"], concurrency=1, name="doomed", tmp_dir=tmp_path,
        extra_env={"AUTOMATION_HEARTBEAT_SECONDS": "0.3"},
    )
    with doomed as w:
        execution = engine.start_execution(flow="stuck")
        wait_until(lambda: _status(execution.pk) == "RUNNING", 30)
        w.stop(signal.SIGKILL)  # dead before it heard the cancel
    assert engine.cancel_execution(execution) == [execution.pk]
    assert not engine.wait_stopped([execution.pk], 1)  # nobody recorded its end yet
    execution.refresh_from_db()
    assert (execution.status, execution.stop_status) == ("RUNNING", "ENDED_CANCELLED")
    wait_until(lambda: reconcile()["lost"] or _status(execution.pk) == "ENDED_CANCELLED", 15, interval=0.5)
    execution.refresh_from_db()
    assert execution.status == "ENDED_CANCELLED"
    assert execution.message == "cancelled"


@pytest.mark.skipif(
    settings.BROKER_KIND != "redis",
    reason="loses the messages by flushing Redis; on RabbitMQ they are not in Redis",
)
def test_executions_queued_when_redis_lost_its_data_still_complete(make_flow, tmp_path, fast_reconciler):
    make_flow("later", "def handler(system, this, inputs):\n    return {'n': inputs['n']}\n", queue="late")
    queued = [engine.start_execution(flow="later", input_value={"n": n}) for n in range(5)]
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # the messages are gone
    with running_worker(queues=["late.productive"], concurrency=1, name="late", tmp_dir=tmp_path):
        wait_until(lambda: reconcile()["resent"] or True, 5)
        ended = engine.wait_for([e.pk for e in queued], timeout=30)
    assert [e.status for e in ended] == ["ENDED_SUCCESS"] * 5
    assert [e.output_value["n"] for e in ended] == list(range(5))


def test_two_reconcilers_at_once_resend_a_lost_message_only_once(make_flow, fast_reconciler):
    make_flow("nobody-serves", "def handler(system, this):\n    pass\n", queue="nowhere")
    execution = engine.start_execution(flow="nobody-serves")
    Execution.objects.filter(pk=execution.pk).update(
        created_at=execution.created_at.replace(year=2020)
    )
    first, second = reconcile(), reconcile()
    assert (first["resent"], second["resent"]) == (1, 0)
