"""Durable timers: a flow's sleep that holds no worker process and survives any worker.

Every `this.sleep` / `this.sleep_until` is recorded on its execution (`sleeps`: its step ->
its due time), so a handler replayed after a parked wait finds it again: a sleep that is due
returns at once, one that is not waits only for the rest. A sleep longer than
PARK_AFTER_SECONDS parks at once (WAITING, parked, `wake_at` set), and so does a shorter one
when its worker is asked to stop. The workers' timer loop (`start_loop`, in each worker's
main process) resumes parked sleepers when they are due: one indexed query twice a second,
and a conditional update, so that of several workers exactly one resumes each.

Not Celery countdown messages: with Redis as the broker, a message due later than the
visibility timeout is delivered again, and one whose worker dies is late by that timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from flow_api.exceptions import ExecutionParked, ExecutionTerminated

from ..models import Execution
from . import parking, transitions
from .guard import guard

log = logging.getLogger(__name__)
LOOP_SECONDS = 0.5


def sleep(execution: Execution, step: int, seconds: float) -> None:
    """The `step`-th flow_api call of `execution` is a sleep of `seconds` (or was, before a
    replay): wait until it is due, here or parked."""
    due = _recorded(execution, step)
    if due is None:
        due = timezone.now() + timedelta(seconds=max(0.0, float(seconds)))
        execution.sleeps = {**(execution.sleeps or {}), str(step): due.isoformat()}
        Execution.objects.filter(pk=execution.pk).update(sleeps=execution.sleeps)
    park_after = float(settings.AUTOMATION["PARK_AFTER_SECONDS"])
    if (due - timezone.now()).total_seconds() <= 0:
        return  # replayed after it was due
    if park_after and (due - timezone.now()).total_seconds() > park_after:
        _park_until(execution, due)
    g = guard()
    marked = transitions.mark_waiting(execution)
    # Marked as sleeping until `due` (mark_running clears it): if this process dies, the
    # reconciler parks it rather than ending it, and it resumes when due.
    Execution.objects.filter(pk=execution.pk).update(wake_at=due)
    # No `finally`: a sleep left by an exception stays WAITING with its `wake_at`, to be
    # parked (ExecutionParked, or the reconciler if its process is dying), or was ended
    # (ExecutionTerminated: a cancel or timeout).
    while (left := (due - timezone.now()).total_seconds()) > 0:
        if g.park_requested:  # the worker stops: this sleep goes on without it
            _park_until(execution, due)
        with g.interruptible():
            time.sleep(min(left, 1.0))
    if marked and not transitions.mark_running(execution):
        raise ExecutionTerminated()


def _recorded(execution: Execution, step: int) -> datetime | None:
    found = (execution.sleeps or {}).get(str(step))
    return datetime.fromisoformat(found) if found else None


def _park_until(execution: Execution, due: datetime) -> None:
    Execution.objects.filter(pk=execution.pk).update(wake_at=due)
    execution.wake_at = due
    raise ExecutionParked()


def resume_due() -> int:
    """Resume every parked sleeper that is due; how many this call resumed."""
    due = Execution.objects.filter(
        status=Execution.Status.WAITING, parked=True, wake_at__lte=timezone.now()
    ).values_list("pk", flat=True)[:200]
    return sum(parking.resume(pk, due_timer=True) for pk in list(due))


def start_loop() -> threading.Thread:
    """Run `resume_due` twice a second in a daemon thread of this (the worker's) process."""

    def loop() -> None:
        while True:
            try:
                resume_due()
            except Exception:  # the database restarts: the next pass tries again
                log.exception("timer loop hiccup; retrying")
                close_old_connections()
                time.sleep(2)
            time.sleep(LOOP_SECONDS)

    thread = threading.Thread(target=loop, name="durable-timers", daemon=True)
    thread.start()
    return thread
