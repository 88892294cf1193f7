"""Celery tasks: thin, they take ids, claim the row and call the engine.

The `name=` of each task is part of the contract (beat's rows, the broker's messages and
executions.engine.dispatch name them): it never changes when code moves.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from .engine import error_handlers, runner, transitions
from .engine.reconciler import reconcile as run_reconciler
from .engine.retention import prune, prune_idempotency_keys
from .engine.start import claim
from .schedules import fire

log = logging.getLogger(__name__)


@shared_task(name="executions.run_execution", acks_late=True, ignore_result=True)
def run_execution(execution_id: int, limited: bool | None = None) -> None:
    """Claim execution `execution_id` and run it; a delivery that loses the claim does nothing.
    `limited`: whether a concurrency limit holds it (messages sent before it was given: None)."""
    # A reused connection may have died with a database restart: claim across it.
    execution = runner.with_db_retry(lambda: claim(execution_id, limited=limited), deadline_seconds=30)
    if execution is None:
        return
    try:
        runner.execute(execution)
    except Exception as exc:  # an engine fault, not the flow's: record it before re-raising
        log.exception("execution %s failed in the engine", execution_id)
        if transitions.mark_ended(
            execution, execution.Status.ENDED_ERROR, f"engine error: {type(exc).__name__}: {exc}"
        ) and execution.status == execution.Status.ENDED_ERROR:
            error_handlers.after_error([execution.pk])
        raise


@shared_task(name="executions.reconcile", ignore_result=True)
def reconcile() -> dict[str, int]:
    """Beat runs this periodically: ends lost executions and re-sends lost messages."""
    return run_reconciler()


@shared_task(name="executions.fire_schedule", ignore_result=True)
def fire_schedule(schedule_id: int, scheduled_for: str | None = None) -> int | None:
    """Beat runs this for a schedule's fire time: records one SCHEDULE execution for
    (schedule, fire time), at most once however often it is delivered. Returns its id."""
    execution = fire(schedule_id, scheduled_for)
    return execution.pk if execution is not None else None


@shared_task(name="executions.prune_executions", ignore_result=True)
def prune_executions() -> int:
    """Beat runs this daily: deletes ended executions older than AUTOMATION_RETENTION_DAYS
    (0 = keep everything), and expired idempotency keys. Returns how many top-level
    executions were deleted."""
    prune_idempotency_keys()
    days = int(settings.AUTOMATION["RETENTION_DAYS"])
    return prune(timedelta(days=days)) if days > 0 else 0
