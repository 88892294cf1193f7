"""A bounded graceful shutdown for workers (and a reconciler pass after a start).

On SIGTERM Celery stops taking work and waits for running tasks, without a limit. Here the
worker's main process gives its executions a grace period; those still running then end
ENDED_ERROR with a reason that says so (their pool processes are interrupted through the
usual cancel notice), so the shutdown completes in bounded time and none stays RUNNING.
Executions waiting for a message form's answer are asked to park at once instead: they
lose nothing and go on on another (or the restarted) worker once answered.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.worker import state
from django.conf import settings
from django.db import connection

from ..models import Execution
from . import ending, notify, retries
from .parking import wait_lost_seconds
from .reconciler import reconcile

log = logging.getLogger(__name__)


def _running_execution_ids() -> list[int]:
    ids = []
    for request in list(state.active_requests):
        if request.name == "executions.run_execution" and request.args:
            ids.append(int(request.args[0]))
    return ids


_handed_over: set[int] = set()  # replayed elsewhere: never ended from here


def end_after_grace(grace: float) -> None:
    ids = [pk for pk in _running_execution_ids() if pk not in _handed_over]
    if not ids:
        return
    ended = ending.end_executions(
        ids, Execution.Status.ENDED_ERROR,
        f"worker shut down: still running {grace:g} s after the worker was asked to stop",
    )
    if ended:
        log.warning("shutdown grace ran out; ended executions %s", ended)


def on_worker_shutting_down(**kwargs: Any) -> None:
    # Flows waiting for a message form's answer, or sleeping, need no process: they park at
    # once and a worker resumes them when the answer comes or the sleep is due.
    running = _running_execution_ids()
    notify.publish_park(running)
    # Flows that recover by replay are handed over at once: parked, their run here is
    # interrupted, and in a second (once the interrupt was heard) another worker replays them.
    handed = retries.hand_over(
        list(Execution.objects.filter(pk__in=retries.replayable(running))),
        "its worker was asked to stop", after=1.0,
    )
    if handed:
        _handed_over.update(handed)
        notify.publish_cancel(handed)
        log.warning("handed over executions %s for replay on another worker", handed)
    grace = float(settings.AUTOMATION["SHUTDOWN_GRACE_SECONDS"])
    timer = threading.Timer(grace, end_after_grace, args=(grace,))
    timer.daemon = True
    timer.start()


def reconcile_after_start(**kwargs: Any) -> None:
    """A worker that starts may be replacing one that died: once a dead wait's heartbeat
    would be stale, run one reconciler pass here, so that its parked waits come back even
    where no beat runs (the pass is safe beside beat's)."""
    def run() -> None:
        try:
            reconcile()
        except Exception:  # beat's next pass does the same
            log.exception("the reconciler pass after the worker's start failed")
        finally:
            connection.close()  # this thread's own; pool processes forked later must not share it

    timer = threading.Timer(wait_lost_seconds() + 1, run)
    timer.daemon = True
    timer.start()
