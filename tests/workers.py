"""Real Celery worker processes for tests, started the way production starts them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from executions.engine.isolation import isolation

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database this test session uses (the test database, once created)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def stop_process_group(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15
) -> None:
    """Signal a process started with start_new_session=True and its whole group; SIGKILL
    the group if it lingers past `timeout`. By pid, so only what the test started."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class Worker:
    def __init__(
        self, process: subprocess.Popen[bytes], name: str, log_path: Path,
        start_arguments: dict[str, Any] | None = None,
    ) -> None:
        self.process = process
        self.name = name
        self.log_path = log_path
        self.start_arguments = start_arguments or {}

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        stop_process_group(self.process, sig, timeout)

    def wait_idle(self, timeout: float = 15) -> bool:
        """Wait until this worker runs no task (bounded): a cancelled flow's process may take
        its grace period to stop, and the next test needs both slots. False if it did not."""
        from automation.celery import app

        def idle() -> bool:
            # A connection of each broadcast's own (see workers_status.ask_workers).
            with app.connection_for_write() as connection:
                inspect = app.control.inspect(
                    destination=[self.name], timeout=1, limit=1, connection=connection
                )
                replies = inspect.active()
            return replies is not None and self.name in replies and not replies[self.name]

        if self.process.poll() is not None:
            return False  # not running at all
        deadline = time.monotonic() + timeout
        while not idle():  # a fault of the broadcast itself is raised, not taken for "busy"
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def stacks(self) -> str:
        """Where each process of this worker stands (py-spy), for a report of a stuck one."""
        found = subprocess.run(
            ["pgrep", "-g", str(self.pid)], capture_output=True, text=True, timeout=10
        ).stdout.split()
        spy = Path(sys.executable).with_name("py-spy")
        dumps = []
        for pid in found:
            try:
                dumps.append(subprocess.run(
                    [str(spy), "dump", "--pid", pid], capture_output=True, text=True, timeout=20
                ).stdout)
            except (OSError, subprocess.TimeoutExpired) as exc:
                dumps.append(f"pid {pid}: no dump ({exc})")
        return "\n".join(dumps)

    def restart(self) -> None:
        """Stop this worker and start it again with the same arguments (same name); its log
        so far is kept beside the new one."""
        self.stop()
        self.log_path.rename(self.log_path.with_suffix(f".{time.strftime('%H%M%S')}.log"))
        fresh = start_worker(**self.start_arguments)
        self.process, self.log_path = fresh.process, fresh.log_path


def start_worker(
    *, queues: list[str], concurrency: int = 2, name: str, tmp_dir: Path,
    extra_env: dict[str, str] | None = None, pool: str = "prefork", broker_url: str | None = None,
) -> Worker:
    """Start `celery worker` in its own process group and wait until it answers a ping."""
    from automation.celery import app

    log_path = tmp_dir / f"worker-{name}.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    hostname = f"{name}@{os.uname().nodename}-{os.getpid()}"
    # Full isolation where this machine allows it (root, a Python the flow user can read);
    # elsewhere the suite still runs, as `none` (test_isolation.py then skips, saying why).
    if "AUTOMATION_FLOW_ISOLATION" not in env and isolation().refused:
        env["AUTOMATION_FLOW_ISOLATION"] = "none"
    # Flows see only the environment a worker lets through: this one tells which worker ran them.
    env["AUTOMATION_TEST_WORKER"] = hostname
    env["AUTOMATION_FLOW_ENV"] = f"{env.get('AUTOMATION_FLOW_ENV', '')} AUTOMATION_TEST_WORKER".strip()
    command = [
        sys.executable, "-m", "celery", "-A", "automation", "worker",
        "-P", pool, "-c", str(concurrency), "-Q", ",".join(queues), "-n", hostname,
        "--without-mingle", "--without-gossip", "-l", "info",
    ]
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process, hostname, log_path, {
        "queues": queues, "concurrency": concurrency, "name": name, "tmp_dir": tmp_dir,
        "extra_env": extra_env, "pool": pool, "broker_url": broker_url,
    })
    try:
        def answers() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{worker.log()[-3000:]}")
            if broker_url is None:
                return bool(app.control.ping(destination=[hostname], timeout=0.5))
            return " ready." in worker.log()  # on a broker of the test's own

        wait_until(answers, timeout=60, interval=0.2)
    except BaseException:
        worker.stop(signal.SIGKILL)
        raise
    return worker


@contextlib.contextmanager
def running_worker(**kwargs: Any) -> Iterator[Worker]:
    worker = start_worker(**kwargs)
    try:
        yield worker
    finally:
        worker.stop()
