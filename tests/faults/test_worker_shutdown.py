"""SIGTERM to a worker: short work finishes, long work ends with a reason; none stays RUNNING."""

from __future__ import annotations

import signal
import time

import pytest

from executions import engine
from executions.models import Execution

from ..workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]


def test_sigterm_lets_short_work_finish_and_ends_long_work_after_the_grace(make_flow, tmp_path):
    make_flow("short", "import time\ndef handler(system, this):\n    time.sleep(1)\n    return {'done': True}\n", queue="term")
    make_flow("long", "import time\ndef handler(system, this):\n    time.sleep(3600)\n", queue="term")
    with running_worker(
        queues=["term.productive"], concurrency=2, name="term", tmp_dir=tmp_path,
        extra_env={"AUTOMATION_SHUTDOWN_GRACE_SECONDS": "2"},
    ) as w:
        short = engine.start_execution(flow="short")
        long = engine.start_execution(flow="long")
        wait_until(
            lambda: Execution.objects.filter(pk__in=[short.pk, long.pk], status="RUNNING").count() == 2,
            30,
        )
        started = time.monotonic()
        w.process.send_signal(signal.SIGTERM)
        w.process.wait(timeout=20)
        assert time.monotonic() - started < 10
    short.refresh_from_db()
    long.refresh_from_db()
    assert short.status == "ENDED_SUCCESS"
    assert short.output_value == {"done": True}
    assert long.status == "ENDED_ERROR"
    assert long.message.startswith("worker shut down")
