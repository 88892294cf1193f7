"""Real `celery beat` processes drive schedules: an interval schedule fires and starts its
flow, two beats at once start each fire time once, and disabling takes effect live."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from executions import engine
from executions.models import Execution, Schedule

from ..workers import ROOT, database_url, stop_process_group, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@contextlib.contextmanager
def running_beat(tmp: Path, name: str) -> Iterator[Path]:
    log = tmp / f"beat-{name}.log"
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL,
           "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "automation", "beat", "-l", "info",
             "--max-interval", "1", "-s", str(tmp / f"beat-{name}.db"),
             "--pidfile", str(tmp / f"beat-{name}.pid")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield log
    finally:
        stop_process_group(process, timeout=10)


def test_two_beats_fire_an_interval_schedule_once_per_fire_time_and_stop_when_disabled(
    make_flow, tmp_path
):
    flow = make_flow("tick", "def handler(system, this):\n    return {'at': this.get('input_value')['scheduled_at']}\n")
    start = timezone.now().replace(microsecond=0) + timedelta(seconds=2)
    schedule = Schedule.objects.create(name="every-2s", flow=flow, interval_seconds=2, start_at=start)

    with running_beat(tmp_path, "a") as log_a, running_beat(tmp_path, "b") as log_b:
        wait_until(lambda: Execution.objects.filter(schedule=schedule).count() >= 4, timeout=40,
                   interval=0.2)
        schedule.enabled = False
        schedule.save()  # no beat restart: beat reloads on the change marker
        time.sleep(1.5)  # a firing already sent may still land
        stopped_at = Execution.objects.filter(schedule=schedule).count()
        time.sleep(4)
        assert Execution.objects.filter(schedule=schedule).count() == stopped_at
        logs = log_a.read_text() + log_b.read_text()

    firings = list(Execution.objects.filter(schedule=schedule).order_by("scheduled_for"))
    times = [f.scheduled_for for f in firings if f.scheduled_for is not None]
    assert len(times) == len(firings)
    assert len(set(times)) == len(times)  # each fire time started once by two beats
    assert all((t - start).total_seconds() % 2 == 0 for t in times)  # on the grid, no drift
    assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(times))
    for firing, fire_time in zip(firings, times, strict=True):
        assert engine.wait_for([firing.pk], timeout=20)[0].is_ended
        child = Execution.objects.get(parent=firing)
        assert child.status == "ENDED_SUCCESS"
        assert child.output_value["at"] == fire_time.isoformat()
    assert "Traceback" not in logs, logs[-3000:]


def test_a_beat_killed_and_restarted_catches_up_its_missed_firings_without_doubling(
    make_flow, tmp_path
):
    flow = make_flow("tock", "def handler(system, this):\n    pass\n")
    start = timezone.now().replace(microsecond=0) + timedelta(seconds=2)
    schedule = Schedule.objects.create(name="every-2s", flow=flow, interval_seconds=2, start_at=start)

    with running_beat(tmp_path, "first"):
        wait_until(lambda: Execution.objects.filter(schedule=schedule).count() >= 2, timeout=40,
                   interval=0.2)
        # SIGKILL, not a clean stop: beat gets no chance to save anything.
        pid = int((tmp_path / "beat-first.pid").read_text())
        os.kill(pid, signal.SIGKILL)
    before = Execution.objects.filter(schedule=schedule).count()
    time.sleep(5)  # two or three fire times pass with no beat at all
    down_until = timezone.now()
    with running_beat(tmp_path, "second") as log:
        # Every fire time up to now is started, the missed ones included (README: a fire time
        # later than AUTOMATION_SCHEDULE_MISFIRE_SECONDS is skipped; 5 s is well inside it).
        expected = int((down_until - start).total_seconds() // 2) + 1
        wait_until(
            lambda: Execution.objects.filter(schedule=schedule).count() >= expected + 1,
            timeout=40, interval=0.2,
        )
        schedule.enabled = False
        schedule.save()
        logs = log.read_text()
    times = sorted(
        t for t in Execution.objects.filter(schedule=schedule).values_list("scheduled_for", flat=True)
        if t is not None
    )
    assert len(times) == Execution.objects.filter(schedule=schedule).count()
    print(f"beat restart: {before} firings before the kill, {len(times)} after; none lost or doubled")
    assert len(set(times)) == len(times)  # none doubled
    assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(times))  # none lost
    assert times[0] == start
    assert "Traceback" not in logs, logs[-3000:]
