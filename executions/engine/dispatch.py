"""The only code that sends Celery messages: one per execution, after the transaction commits."""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction

from ..models import Execution
from . import broker
from .queues import celery_queue

# The name of the task in executions/tasks.py. Sent by name, so that the engine does not
# import its interface (the tasks), which imports the engine.
RUN_TASK = "executions.run_execution"


def dispatch(execution: Execution) -> None:
    """Send the execution's Celery message after the current transaction commits."""
    queue = celery_queue(execution.queue, execution.mode)
    pk = execution.pk
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
    transaction.on_commit(lambda: current_app.send_task(RUN_TASK, (pk,), **options))
