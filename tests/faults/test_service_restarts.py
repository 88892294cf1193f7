"""Restarts for real: PostgreSQL and Redis go away under running work, and nothing is lost.

Each test runs the engine on a PostgreSQL and a Redis of its own (tests/private_services.py),
with real worker and beat processes, and drives it as a user would: from the shell.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..private_services import PrivatePostgres, PrivateRedis, private_postgres, private_redis
from ..workers import ROOT, running_worker, wait_until

pytestmark = pytest.mark.slow

FLOWS = {
    "napper": "import time\ndef handler(system, this, inputs):\n    time.sleep(inputs.get('s', 2))\n    return {'slept': True}\n",
    "quick": "def handler(system, this, inputs):\n    return {'n': inputs.get('n')}\n",
}


class Stack:
    def __init__(self, pg: PrivatePostgres, redis: PrivateRedis, tmp: Path) -> None:
        self.pg, self.redis, self.tmp = pg, redis, tmp
        self.env = {
            "DATABASE_URL": pg.url, "REDIS_URL": redis.url, "PATH": "/usr/bin:/bin",
            # A server database with DEBUG off needs SECRET_KEY (automation/settings.py).
            "SECRET_KEY": "restart-tests-" + "k" * 40,
            "AUTOMATION_HEARTBEAT_SECONDS": "0.5", "AUTOMATION_PENDING_RESEND_SECONDS": "1",
            "AUTOMATION_RECONCILE_SECONDS": "1", "AUTOMATION_SAFETY_POLL_SECONDS": "0.5",
        }

    def manage(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
            text=True, timeout=timeout,
        )

    def start(self, flow: str, **inputs: object) -> int:
        result = self.manage("run_flow", flow, "--input-json", json.dumps(inputs))
        assert result.returncode == 0, result.stderr
        return int(json.loads(result.stdout)["id"])

    def status(self, pk: int) -> str:
        return str(self.pg.query("SELECT status FROM executions_execution WHERE id = %s", pk)[0][0])

    def worker(self, name: str):  # type: ignore[no-untyped-def]
        return running_worker(
            queues=["default.productive"], concurrency=2, name=name, tmp_dir=self.tmp,
            extra_env=self.env, broker_url=self.redis.url,
        )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with private_postgres(tmp_path) as pg, private_redis(tmp_path) as redis:
        s = Stack(pg, redis, tmp_path)
        assert s.manage("migrate", "-v0").returncode == 0
        flows = tmp_path / "flows"
        flows.mkdir()
        for name, source in FLOWS.items():
            (flows / f"{name}.py").write_text(source)
        assert s.manage("load_flows", str(flows)).returncode == 0
        yield s


def test_a_postgresql_restart_loses_no_running_or_new_execution(stack: Stack):
    with stack.worker("pg-restart"):
        running = stack.start("napper", s=3)
        wait_until(lambda: stack.status(running) == "RUNNING", 30, interval=0.2)
        stack.pg.restart()
        # The work that was running is recorded with its real outcome once the database is back.
        wait_until(lambda: stack.status(running).startswith("ENDED"), 60, interval=0.5)
        assert stack.status(running) == "ENDED_SUCCESS"
        # Workers reconnect: new executions run.
        after = stack.manage("run_flow", "quick", "--input", "n=7", "--wait", "--timeout", "60")
        assert after.returncode == 0, after.stderr
        assert json.loads(after.stdout)["output_value"] == {"n": 7}


def test_executions_queued_before_a_redis_restart_all_complete(stack: Stack):
    queued = [stack.start("quick", n=n) for n in range(5)]  # no worker yet: they wait in Redis
    stack.redis.kill()  # the queue is gone with it (no persistence)
    stack.redis.start()
    with open(stack.tmp / "beat.log", "wb") as beat_log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "automation", "beat", "-l", "info",
             "-s", str(stack.tmp / "beat-schedule")],
            cwd=ROOT, env=stack.env, stdout=beat_log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with stack.worker("redis-restart") as w:
            wait_until(lambda: all(stack.status(pk) == "ENDED_SUCCESS" for pk in queued), 60, 0.5)
            # The worker survives a second restart while it is connected, and goes on.
            stack.redis.kill()
            time.sleep(1)
            stack.redis.start()
            # Celery reconnects with a growing backoff; wait (bounded) until it did, so that a
            # slow machine fails here, saying so, rather than in the flow's own wait below.
            wait_until(lambda: w.log().count("Connected to redis") >= 2, 90, interval=0.5)
            later = stack.manage("run_flow", "quick", "--input", "n=1", "--wait", "--timeout", "60")
            assert later.returncode == 0, (later.stderr, w.log()[-2000:])
    finally:
        beat.send_signal(signal.SIGKILL)
        beat.wait(timeout=10)
