"""Celery tasks: thin, they take ids, claim the row and call the runner."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import task_failure

from . import metrics, runner, services

log = logging.getLogger(__name__)


@shared_task(name="executions.run_execution", acks_late=True, ignore_result=True)
def run_execution(execution_id: int) -> None:
    """Claim execution `execution_id` and run it; a delivery that loses the claim does nothing."""
    # A reused connection may have died with a database restart: claim across it.
    execution = runner.with_db_retry(lambda: services.claim(execution_id), deadline_seconds=30)
    if execution is None:
        return
    try:
        runner.execute(execution)
    except Exception as exc:  # an engine fault, not the flow's: record it before re-raising
        log.exception("execution %s failed in the engine", execution_id)
        if execution.mark_ended(
            execution.Status.ENDED_ERROR, f"engine error: {type(exc).__name__}: {exc}"
        ):
            metrics.count_ended([(execution.type, execution.status, execution.started_at)])
        raise


@shared_task(name="executions.reconcile", ignore_result=True)
def reconcile() -> dict[str, int]:
    """Beat runs this periodically: ends lost executions and re-sends lost messages."""
    from .reconciler import reconcile as run_reconciler

    return run_reconciler()


@shared_task(name="executions.fire_schedule", ignore_result=True)
def fire_schedule(schedule_id: int, scheduled_for: str | None = None) -> int | None:
    """Beat runs this for a schedule's fire time: records one SCHEDULE execution for
    (schedule, fire time), at most once however often it is delivered. Returns its id."""
    from .schedules import fire

    execution = fire(schedule_id, scheduled_for)
    return execution.pk if execution is not None else None


@shared_task(name="executions.prune_executions", ignore_result=True)
def prune_executions() -> int:
    """Beat runs this daily: deletes ended executions older than AUTOMATION_RETENTION_DAYS
    (0 = keep everything). Returns how many top-level executions were deleted."""
    from datetime import timedelta

    from django.conf import settings

    from .retention import prune

    days = int(settings.AUTOMATION["RETENTION_DAYS"])
    return prune(timedelta(days=days)) if days > 0 else 0


def _on_worker_lost(
    sender: object = None, task_id: str | None = None, exception: BaseException | None = None,
    args: tuple[object, ...] | None = None, **_: object,
) -> None:
    """The pool process running an execution died (the flow called os._exit(), a crash, the
    OOM killer): Celery's main process sees WorkerLostError. End the execution at once with
    that reason instead of waiting for the reconciler's heartbeat threshold."""
    from billiard.exceptions import WorkerLostError

    if getattr(sender, "name", None) != "executions.run_execution":
        return
    if not isinstance(exception, WorkerLostError) or not args:
        return
    from .parking import settle_lost

    try:
        execution_id = int(args[0])  # type: ignore[call-overload]
        settle_lost(  # a wait for a message form's answer is parked, not ended
            [execution_id],
            f"worker lost: the process running it exited ({exception}); "
            "a flow calling os._exit() does this",
        )
    except Exception:  # the reconciler ends it later anyway
        log.exception("could not end the execution of lost task %s", task_id)


task_failure.connect(_on_worker_lost, weak=False)
