"""Ending executions from outside their run: cancel, timeout, lost workers, shutdown.

A cancel or a timeout ends at once only what no process runs (PENDING, parked); a running
one is asked to stop (executions.engine.transitions.request_stop), in one transaction with
its descendants, and ends ENDED_CANCELLED (a timeout: ENDED_ERROR) once its code has
stopped: its worker records that end when the flow host is gone, which the cancel grace
bounds (the host is killed), or the reconciler does when that worker died.
waiting.wait_stopped lets a caller (the API, the admin) wait for it, bounded.

After commit the workers are told to stop them and the waiters of those that ended that
they did; a parent parked while awaiting one goes on; those ended in error start their
flows' error handlers (executions.engine.error_handlers).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from ..models import Execution
from . import error_handlers, notify, parking, retries, transitions

log = logging.getLogger(__name__)
Status = Execution.Status


def descendant_ids(execution_id: int) -> list[int]:
    """Ids of all descendants, level by level."""
    found: list[int] = []
    level = [execution_id]
    while level:
        level = list(Execution.objects.filter(parent_id__in=level).values_list("pk", flat=True))
        found.extend(level)
    return found


def _announce(ended: list[tuple[int, str]]) -> list[int]:
    """Tell workers to stop running them and waiters that they ended (after commit)."""
    ids = [pk for pk, _ in ended]

    def publish() -> None:
        notify.publish_cancel(ids)
        for pk, status in ended:
            notify.publish_ended(pk, status)
        try:
            parking.resume_parents(ids)  # a parent parked while awaiting one of them goes on
        except Exception:  # the reconciler's sweep resumes it then
            log.exception("could not resume the parked parents of %s", ids)

    if ids:
        transaction.on_commit(publish)
        # Timeouts, "worker lost", "worker shut down": their flows' error handlers start.
        error_handlers.after_error(pk for pk, status in ended if status == Status.ENDED_ERROR)
    return ids


def end_executions(ids: Iterable[int], status: str, message: str) -> list[int]:
    """End those of `ids` that have not ended yet; tell their waiters and workers."""
    return _announce(transitions.close(ids, status, message))


def _stop(tree: list[tuple[list[int], str, str]]) -> list[int]:
    """Stop each (ids, end status, message) in one transaction: ended at once where no
    process runs them, else asked to stop; after commit their processes are told. Returns
    the ids ended or asked to stop."""
    ended: list[tuple[int, str]] = []
    asked: list[int] = []
    with transaction.atomic():
        for ids, status, message in tree:
            now, later = transitions.request_stop(ids, status, message)
            ended += now
            asked += later
    if asked:
        transaction.on_commit(lambda: notify.publish_cancel(asked))
    return _announce(ended) + asked


def cancel_execution(execution: Execution | int, message: str = "cancelled") -> list[int]:
    """Cancel an execution and all its descendants; returns the ids cancelled.

    What no process runs ends ENDED_CANCELLED at once; what runs is interrupted and ends
    ENDED_CANCELLED once its code has stopped (waiting.wait_stopped waits for that).
    """
    pk = execution if isinstance(execution, int) else execution.pk
    return _stop([
        ([pk], Status.ENDED_CANCELLED, message),
        (descendant_ids(pk), Status.ENDED_CANCELLED, f"cancelled with execution {pk}"),
    ])


def pause_execution(execution: Execution | int) -> str | None:
    """RUNNING or WAITING -> PAUSED; the execution holds at its next flow_api call (a wait
    it is in goes on; when the wait ends it holds) until `resume_execution`. None when it
    is paused (also if it was already), else why it cannot be."""
    row = Execution.objects.get(pk=execution if isinstance(execution, int) else execution.pk)
    if transitions.pause(row):
        notify.publish_pause([row.pk])
        return None
    row.refresh_from_db(fields=["status", "parked"])
    if row.status == Status.PAUSED:
        return None
    if row.parked:
        return (f"execution {row.pk} is parked (its wait holds no process): it cannot be "
                "paused; its answer resumes it")
    return f"execution {row.pk} is {row.status}: only a running or waiting execution can be paused"


def resume_execution(execution: Execution | int) -> bool:
    """PAUSED -> RUNNING (the held flow goes on); False if it was not paused."""
    row = Execution.objects.get(pk=execution if isinstance(execution, int) else execution.pk)
    return transitions.unpause(row)


def end_timed_out(execution_id: int, timeout: float) -> list[int]:
    """Stop an execution for its timeout (it ends ENDED_ERROR once its code has stopped)
    and cancel its descendants; or, if its retry policy retries a timeout, park it for its
    next attempt instead. The ids returned are to be interrupted where they run."""
    descendants = descendant_ids(execution_id)
    message = f"timed out after {timeout:g} s"
    cancelled = (descendants, Status.ENDED_CANCELLED, f"cancelled: execution {execution_id} timed out")
    execution = Execution.objects.filter(pk=execution_id, status=Status.RUNNING).first()
    if execution is not None and retries.schedule_retry(
        execution, message, ["Timeout", "TimeoutError"], execution.started_at
    ):
        return [execution_id, *_stop([cancelled])]
    if not Execution.objects.filter(pk=execution_id, status__in=transitions.NOT_ENDED).exists():
        return []
    return _stop([([execution_id], Status.ENDED_ERROR, message), cancelled])
