"""A PostgreSQL and a Redis of a test's own, so that a test may restart them for real
without disturbing the shared ones. Both listen on 127.0.0.1 only and are stopped by pid
however the test ends."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            import pytest

            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        _wait_port(self.port, 10)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(workdir)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


class PrivatePostgres:
    def __init__(self, workdir: Path) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            import pytest

            pytest.skip("PostgreSQL server binaries are not installed")
        self.bin = Path(found[-1]).parent
        self.port = free_port()
        # pytest's tmp dirs are private to root; the server runs as postgres, so it gets a
        # folder of its own, removed again in stop().
        self.root = Path(tempfile.mkdtemp(prefix="automation-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "pgdata"
        self.sockets = self.root / "pgsock"

    def _as_postgres(self, *args: str) -> None:
        # The server refuses to run as root; the test runs it as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=60)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/automation"

    def init(self) -> None:
        self.sockets.mkdir(parents=True)
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.data, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE DATABASE automation")

    def _pg_ctl(self, *args: str) -> None:
        # -l: the server must not inherit our pipes, or waiting for pg_ctl never ends.
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30",
            "-l", str(self.root / "pg.log"), "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sockets} -c fsync=off",
            *args,
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=automation",
                             autocommit=True, connect_timeout=10) as conn:
            return conn.execute(sql, params).fetchall()


@contextlib.contextmanager
def private_postgres(workdir: Path) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(workdir)
    try:
        pg.init()
        yield pg
    finally:
        pg.stop()
