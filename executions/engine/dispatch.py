"""The only code that sends Celery messages: one per execution, after the transaction commits."""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.db import transaction

from ..models import Execution
from . import broker
from .queues import celery_queue

# The name of the task in executions/tasks.py. Sent by name, so that the engine does not
# import its interface (the tasks), which imports the engine.
RUN_TASK = "executions.run_execution"

log = logging.getLogger(__name__)


def dispatch(execution: Execution) -> None:
    """Send the execution's Celery message after the current transaction commits."""
    queue = celery_queue(execution.queue, execution.mode)
    pk = execution.pk
    # Whether a concurrency limit holds it (fixed when it was created): a claim of one that
    # is not, missed, needs no second look (an execution run inline sent its message too).
    limited = bool(execution.limited)
    options: dict[str, Any] = {
        "queue": queue,
        "priority": broker.message_priority(execution.priority),
        # What Flower and the worker's log show for the task: the id it takes, and which
        # execution that is (names only, never input values: they may hold secrets).
        "argsrepr": f"({pk},)",
        "kwargsrepr": repr(
            {"name": execution.name, "type": str(execution.type), "mode": str(execution.mode)}
        ),
        "ignore_result": True,  # as the task says: outcomes live on the row
    }

    def send() -> None:
        # The row is committed: the execution is accepted whatever the broker does now. A
        # send that fails leaves it PENDING, and the reconciler sends it again (after
        # AUTOMATION_PENDING_RESEND_SECONDS); the caller learns it from `send_warning`.
        try:
            current_app.send_task(RUN_TASK, (pk,), {"limited": limited}, **options)
        except Exception as exc:
            where = broker.where()
            log.warning(
                "execution %s: the broker (%s) did not take its message (%s); it stays "
                "PENDING for the reconciler", pk, where, type(exc).__name__,
                extra={"execution_id": pk},
            )
            execution._send_warning = (  # type: ignore[attr-defined]
                f"accepted, but the broker ({where}) could not take its message "
                f"({type(exc).__name__}): it stays PENDING and is sent again within "
                "AUTOMATION_PENDING_RESEND_SECONDS"
            )

    transaction.on_commit(send)


def send_warning(execution: Execution) -> str:
    """"" or why this execution's message is not with the broker yet (its send failed)."""
    return str(getattr(execution, "_send_warning", ""))
