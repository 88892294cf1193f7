"""A bounded graceful shutdown for workers.

On SIGTERM Celery stops taking work and waits for running tasks, without a limit. Here the
worker's main process gives its executions a grace period; those still running then end
ENDED_ERROR with a reason that says so (their pool processes are interrupted through the
usual cancel notice), so the shutdown completes in bounded time and none stays RUNNING.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)


def _running_execution_ids() -> list[int]:
    from celery.worker import state

    ids = []
    for request in list(state.active_requests):
        if request.name == "executions.run_execution" and request.args:
            ids.append(int(request.args[0]))
    return ids


def end_after_grace(grace: float) -> None:
    from . import services
    from .models import Execution

    ids = _running_execution_ids()
    if not ids:
        return
    ended = services.end_executions(
        ids, Execution.Status.ENDED_ERROR,
        f"worker shut down: still running {grace:g} s after the worker was asked to stop",
    )
    if ended:
        log.warning("shutdown grace ran out; ended executions %s", ended)


def on_worker_shutting_down(**kwargs: Any) -> None:
    grace = float(settings.AUTOMATION["SHUTDOWN_GRACE_SECONDS"])
    timer = threading.Timer(grace, end_after_grace, args=(grace,))
    timer.daemon = True
    timer.start()
