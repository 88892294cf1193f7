"""The web process for tests, started exactly as the Procfile's `web:` line says (gunicorn
with the shipped configuration), after `collectstatic`, in its own process group and
stopped by pid however the test ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import requests
from django.conf import settings

from .private_services import free_port
from .workers import ROOT, database_url, stop_process_group, wait_until


def procfile() -> dict[str, str]:
    """The Procfile's processes: name -> command."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = [line.split(":", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): command.strip() for name, command in entries}


def procfile_command(name: str) -> str:
    command = procfile().get(name)
    assert command, f"the Procfile has no {name}: line"
    return command


def web_env(static_root: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        # The Procfile says `gunicorn`: this virtualenv's, as `make run` puts it on the PATH.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "STATIC_ROOT": str(static_root),
        "WEB_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def collect_static(static_root: Path) -> None:
    if (static_root / "staticfiles.json").exists():
        return
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT, env=web_env(static_root), check=True, timeout=120,
    )


class WebServer:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process, self.port, self.log_path = process, port, log_path
        self.url = f"http://127.0.0.1:{port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process_group(self.process, signal.SIGTERM, timeout=20)


@contextlib.contextmanager
def running_web(tmp_dir: Path, static_root: Path, **extra_env: str) -> Iterator[WebServer]:
    collect_static(static_root)
    port = free_port()
    log_path = tmp_dir / f"web-{port}.log"
    env = web_env(static_root, PORT=str(port), **extra_env)
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            ["sh", "-c", procfile_command("web")], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = WebServer(process, port, log_path)
    try:
        def answers() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"web exited early:\n{server.log()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{server.url}/health", timeout=2).status_code == 200
            return False

        wait_until(answers, timeout=60, interval=0.2)
        yield server
    finally:
        server.stop()
