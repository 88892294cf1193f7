"""Worker groups: `manage.py worker --queues`, and PENDING executions that say why they wait."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from executions import engine
from executions.engine import workers_status
from executions.engine.records import execution_json
from executions.models import Execution

from ..workers import ROOT, Worker, database_url, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _printed(*args: str) -> str:
    out = StringIO()
    call_command("worker", *args, "--print", stdout=out)
    return out.getvalue().strip()


def test_the_worker_command_serves_each_group_in_each_mode_with_the_procfile_flags():
    assert _printed("--queues", "a,b", "--concurrency", "3", "-n", "a1@%h", "-E") == (
        "celery -A automation worker -P prefork -c 3 "
        "-Q a.productive,a.development,b.productive,b.development "
        "--without-mingle --without-gossip -l info -n a1@%h -E"
    )
    assert "-Q remote.productive " in _printed("--queues", "remote", "--modes", "productive")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--queues", "a.productive"], "--queues"),
        (["--queues", ","], "--queues"),
        (["--modes", "staging"], "--modes"),
        (["--concurrency", "0"], "--concurrency"),
    ],
)
def test_the_worker_command_refuses_bad_options_naming_them(args, named):
    with pytest.raises(CommandError, match=named):
        _printed(*args)


def start_command_worker(group: str, tmp_path, *extra: str) -> Worker:  # type: ignore[no-untyped-def]
    """`python manage.py worker --queues <group> [extra]` as a user would run it."""
    from automation.celery import app

    hostname = f"cmd-{group}@{os.uname().nodename}-{os.getpid()}"
    log_path = tmp_path / f"worker-{group}.log"
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL}
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--queues", group, "-c", "1", "-n", hostname,
             *extra],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    worker = Worker(process, hostname, log_path)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"worker exited early:\n{worker.log()[-3000:]}")
        return bool(app.control.ping(destination=[hostname], timeout=0.5))

    try:
        wait_until(answers, timeout=60, interval=0.2)
    except BaseException:
        worker.stop()
        raise
    return worker


def test_an_execution_nobody_serves_stays_pending_says_why_and_runs_once_its_group_has_a_worker(
    make_flow, tmp_path
):
    make_flow("far-away", "def handler(system, this):\n    return {'done': True}\n", queue="island")
    execution = engine.start_execution(flow="far-away")
    workers_status.forget()

    assert execution_json(Execution.objects.get(pk=execution.pk))["waiting_reason"] == (
        "no worker serves queue island.productive"
    )

    worker = start_command_worker("island", tmp_path)
    try:
        assert {"island.productive", "island.development"} <= workers_status.ask_workers()
        ended = engine.wait_for([execution.pk], timeout=30)[0]
        assert (ended.status, ended.output_value) == ("ENDED_SUCCESS", {"done": True})
        assert "waiting_reason" not in execution_json(ended)
        # Once the cache has heard of the new worker, a new PENDING one is not blamed on it.
        assert "island.productive" in (workers_status.served_queues(refresh=True) or set())
    finally:
        worker.stop()


def test_a_pending_execution_on_a_served_queue_has_no_reason_to_give(make_flow):
    make_flow("later", "def handler(system, this):\n    pass\n")
    execution = engine.start_execution(flow="later", run=False)  # held back by the caller
    workers_status.served_queues(refresh=True)
    assert execution_json(execution)["waiting_reason"] == (
        "created with run=False: it starts when it is run"
    )
    Execution.objects.filter(pk=execution.pk).update(deferred=False)
    execution.refresh_from_db()
    assert execution.waiting_reason == ""
