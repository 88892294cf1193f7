"""Flower, started against the same broker, shows our workers and tasks by meaningful names."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from executions import engine

from ..workers import ROOT, database_url, wait_until
from .test_worker_groups import start_command_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
    pytest.mark.slow,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_flower(tmp_path: Path) -> Iterator[tuple[str, tuple[str, str]]]:
    """`celery -A automation flower` on 127.0.0.1, behind basic auth; stopped however it ends."""
    port = _free_port()
    auth = ("monitor", secrets.token_urlsafe(12))
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL}
    log_path = tmp_path / "flower.log"
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "automation", "flower",
                f"--port={port}", "--address=127.0.0.1", f"--basic-auth={auth[0]}:{auth[1]}",
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        def listens() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"flower exited early:\n{log_path.read_text()[-3000:]}")
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listens, timeout=30, interval=0.2)
        yield f"http://127.0.0.1:{port}", auth
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _get(url: str, auth: tuple[str, str], **params: Any) -> Any:
    try:
        response = requests.get(url, auth=auth, params=params, timeout=5)
    except requests.ConnectionError:
        return None  # not listening yet
    return response.json() if response.status_code == 200 else None


def test_flower_lists_our_worker_and_a_finished_execution_s_task_by_name(make_flow, tmp_path):
    make_flow("nightly-report", "def handler(system, this):\n    return {'rows': 3}\n", queue="watched")
    worker = start_command_worker("watched", tmp_path, "-E")  # -E: send task events
    try:
        with running_flower(tmp_path) as (base, auth):
            assert requests.get(f"{base}/api/workers", timeout=5).status_code == 401  # auth needed

            def lists_worker() -> Any:
                workers = _get(f"{base}/api/workers", auth, refresh=1) or {}
                return worker.name in workers and workers[worker.name]

            shown = wait_until(lists_worker, timeout=30, interval=0.5)
            queues = {q["name"] for q in shown.get("active_queues", [])}
            assert {"watched.productive", "watched.development"} <= queues

            execution = engine.start_execution(flow="nightly-report")
            ended = engine.wait_for([execution.pk], timeout=30)[0]
            assert ended.status == "ENDED_SUCCESS"

            def task_of_execution() -> Any:
                tasks = _get(f"{base}/api/tasks", auth, workername=worker.name) or {}
                for task in tasks.values():
                    if task.get("args") == f"({execution.pk},)" and task.get("state") == "SUCCESS":
                        return task
                return None

            task = wait_until(task_of_execution, timeout=30, interval=0.5)
    finally:
        worker.stop()

    assert task["name"] == "executions.run_execution"
    assert task["worker"] == worker.name
    assert "'name': 'nightly-report'" in task["kwargs"]
    assert "'mode': 'productive'" in task["kwargs"]
