"""What the scenarios run on: Django set up on the configured database, a Redis, the bench
database migrated, the bench flows stored, and two Celery workers started with the same flags
(the engine's and the raw floor's), each in its own process group and stopped by pid."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "bench"

# The worker group of every bench execution: its own Celery queue (`bench.productive`), so
# that a bench never runs on (or takes work from) the workers of a real installation.
GROUP = "bench"
ENGINE_QUEUE = f"{GROUP}.productive"
CONCURRENCY = 2
# The flags both workers get; results.md prints them.
WORKER_FLAGS = [
    "-P", "prefork", "-c", str(CONCURRENCY), "--without-mingle", "--without-gossip", "-l", "warning",
]

NOOP = "bench-noop"
SEQ = "bench-seq"
FANOUT = "bench-fanout"
FLOWS = {
    NOOP: "def handler(system, this):\n    return None\n",
    SEQ: (
        "def handler(system, this, inputs):\n"
        "    for _ in range(inputs['count']):\n"
        "        this.flow('bench-noop')\n"
    ),
    FANOUT: (
        "def handler(system, this, inputs):\n"
        "    children = [this.flow('bench-noop', run=False) for _ in range(inputs['count'])]\n"
        "    for child in children:\n"
        "        child.run_async()\n"
        "    this.wait_for(*children)\n"
    ),
}


def setup_django() -> None:
    """Configure Django from automation/settings.py (which reads DATABASE_URL / REDIS_URL)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
    import django

    django.setup()


def _load_dev_script() -> ModuleType:
    """scripts/dev.py knows how to start the embedded Redis; reuse it rather than copy it."""
    spec = importlib.util.spec_from_file_location("automation_dev_script", ROOT / "scripts" / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _redis_answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


@contextlib.contextmanager
def redis_available() -> Iterator[None]:
    """With REDIS_URL unset and nothing on the embedded port, start the embedded Redis
    (as `make run` does) for the length of the run, and stop it by pid afterwards."""
    from django.conf import settings

    from automation.embedded import embedded_redis_url, masked_url

    started = None
    if not _redis_answers(settings.REDIS_URL):
        # The settings' own embedded URL (with the password of var/redis_password).
        if embedded_redis_url(settings.VAR_DIR, settings.EMBEDDED_REDIS_PORT) != settings.REDIS_URL:
            sys.exit(f"[bench] no Redis answers at REDIS_URL={masked_url(settings.REDIS_URL)}")
        dev = _load_dev_script()
        started = dev.start_redis(int(settings.EMBEDDED_REDIS_PORT), Path(settings.VAR_DIR))
    try:
        yield
    finally:
        if started is not None:
            _load_dev_script().stop(started, "Redis")


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def store_flows() -> None:
    """Create or update the bench flows (a changed script bumps its revision)."""
    from executions.models import Flow

    for name, script in FLOWS.items():
        flow = Flow.objects.filter(name=name).first()
        if flow is None:
            Flow.objects.create(name=name, script=script, queue=GROUP, enabled=True)
        elif flow.script != script or flow.queue != GROUP or not flow.enabled:
            flow.script, flow.queue, flow.enabled = script, GROUP, True
            flow.save()


def purge_executions() -> int:
    """Delete the bench's executions (only those of the bench group), so that runs do not
    pile rows into a real database and each starts on tables of the same size."""
    from django.db import IntegrityError, transaction

    from executions.models import Execution, ExecutionLog

    bench = Execution.objects.filter(queue=GROUP)
    try:
        with transaction.atomic():
            # The ORM's delete() would load every row to cascade by hand; these rows have
            # no dependants but their logs and each other.
            ExecutionLog.objects.filter(execution__queue=GROUP)._raw_delete("default")
            return int(bench._raw_delete("default"))
    except IntegrityError:  # another table points at one of them: let the ORM cascade
        return bench.delete()[0]


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM to a process started in a session of its own and its group, SIGKILL if it
    lingers past `timeout`; by pid, so only what the bench started."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def database_url() -> str:
    """The configured database as a URL, for the worker processes."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class Worker:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def pool_pids(self) -> list[int]:
        """The prefork pool processes (children of the worker's main process)."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self) -> None:
        """SIGTERM to the worker's process group, SIGKILL if it lingers; by pid only."""
        stop_process_group(self.process, timeout=20)


def _start(name: str, command: list[str], ping: Any, env: dict[str, str]) -> Worker:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"worker-{name}.log"
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole, by pid
        )
    worker = Worker(name, command, process, log_path)
    try:
        deadline = time.monotonic() + 90
        hostname = command[command.index("-n") + 1]
        while not ping(destination=[hostname], timeout=0.5):
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker {name} exited early:\n{tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not answer a ping within 90 s")
    except BaseException:
        worker.stop()
        raise
    return worker


def worker_env() -> dict[str, str]:
    from django.conf import settings

    # A benchmark tool, not the engine: the workers inherit this environment (PATH, locale)
    # with the database and Redis made explicit, as tests/workers.py does.
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    }


def start_engine_worker() -> Worker:
    from automation.celery import app

    hostname = f"bench-engine@{os.uname().nodename}-{os.getpid()}"
    command = [
        sys.executable, "-m", "celery", "-A", "automation", "worker",
        *WORKER_FLAGS, "-Q", ENGINE_QUEUE, "-n", hostname,
    ]
    return _start("engine", command, app.control.ping, worker_env())


def start_raw_worker() -> Worker:
    from django.conf import settings

    from . import raw_tasks

    configure_raw_client()
    hostname = f"bench-raw@{os.uname().nodename}-{os.getpid()}"
    command = [
        sys.executable, "-m", "celery", "-A", "bench.raw_tasks", "worker",
        *WORKER_FLAGS, "-Q", raw_tasks.QUEUE, "-n", hostname,
    ]
    # What `-b` and `--result-backend` would set, but out of the command line, which every
    # user may read in `ps` (REDIS_URL carries the embedded Redis's password).
    env = {**worker_env(), "CELERY_BROKER_URL": settings.REDIS_URL,
           "CELERY_RESULT_BACKEND": settings.REDIS_URL}
    return _start("raw", command, raw_tasks.app.control.ping, env)


def configure_raw_client() -> None:
    """The bench process sends raw tasks on the same Redis as the engine."""
    from django.conf import settings

    from . import raw_tasks

    raw_tasks.app.conf.update(broker_url=settings.REDIS_URL, result_backend=settings.REDIS_URL)


@contextlib.contextmanager
def workers() -> Iterator[tuple[Worker, Worker]]:
    """Both workers, up for the whole run, stopped by pid however the run ends."""
    engine = start_engine_worker()
    try:
        raw = start_raw_worker()
        try:
            yield engine, raw
        finally:
            raw.stop()
    finally:
        engine.stop()
