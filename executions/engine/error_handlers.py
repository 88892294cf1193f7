"""Error handlers: a flow started when an execution of another flow ends ENDED_ERROR.

A flow's `error_handler` names that flow (AUTOMATION_DEFAULT_ERROR_HANDLER for flows that name
none). It starts in the failed execution's mode, as its user, with trigger `error_handler`
and `input_value` {"execution_id", "flow", "status_message", "attempt"}, once the end is
committed; `start_execution` sends it after that commit too.

Whoever ends an execution in error calls `after_error` once it has won the end: the runner
(`record_end`), the run task (an engine fault) and executions.engine.ending (timeouts,
"worker lost", "worker shut down"). Since only one caller wins an end (transitions), a
failure starts its handler exactly once.

Which failures start one:
- FLOW executions, children included: a failing child is an execution of its flow, so its
  flow's handler starts (and, if the parent then fails too, the parent's).
- SCHEDULE executions (a firing) whose flow could not start (disabled; deleted: then only
  the default handler): the schedule's flow's handler. A firing whose flow started ends
  like that FLOW execution (its child, trigger `parent`), whose own failure is the one
  handled; so it starts none itself (nor when its flow was cancelled).
- Never an execution started by a handler, nor one of its descendants: a failing handler
  starts no handler (and no loop). Never a flow as its own handler (the default handler's
  own failures), nor a SCRIPT or CONNECTION execution.

A handler that cannot start (deleted, disabled) is a WARNING in the failed execution's log;
nothing here raises into the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef

from ..models import Execution, ExecutionLog
from .start import StartError, start_execution

log = logging.getLogger(__name__)
Status = Execution.Status


def after_error(execution_ids: Iterable[int]) -> None:
    """Those of `execution_ids` that ended ENDED_ERROR: start their handlers after commit."""
    ids = list(execution_ids)
    if ids:
        transaction.on_commit(lambda: start_handlers(ids))


def handler_name(execution: Execution) -> str:
    """The flow to start for this failed execution, or "" for none."""
    flow = execution.flow
    name = (flow.error_handler if flow is not None else "") or str(
        settings.AUTOMATION["DEFAULT_ERROR_HANDLER"]
    )
    own = flow.name if flow is not None else ""
    return "" if name == own else name


def start_handlers(execution_ids: list[int]) -> list[Execution]:
    """Start the error handler of each failed execution that has one; returns those started.
    Never raises: a handler that cannot start is a WARNING in the failed execution's log."""
    try:
        failed = list(
            Execution.objects.filter(
                pk__in=execution_ids, status=Status.ENDED_ERROR,
                type__in=(Execution.Type.FLOW, Execution.Type.SCHEDULE),
            )
            .exclude(trigger=Execution.Trigger.ERROR_HANDLER)
            .exclude(root__trigger=Execution.Trigger.ERROR_HANDLER)
            .annotate(flow_ran=Exists(Execution.objects.filter(
                parent=OuterRef("pk"), type=Execution.Type.FLOW,
            )))
            .select_related("flow", "user")
            .order_by("pk")
        )
    except Exception:
        log.exception("could not read failed executions %s to start their error handlers", execution_ids)
        return []
    started = []
    for execution in failed:
        if execution.type == Execution.Type.SCHEDULE and execution.flow_ran:  # type: ignore[attr-defined]
            continue  # the flow's own execution is the one whose failure is handled
        name = handler_name(execution)
        if name:
            handler = _start(execution, name)
            if handler is not None:
                started.append(handler)
    return started


def _start(execution: Execution, name: str) -> Execution | None:
    flow = execution.flow.name if execution.flow is not None else execution.name
    try:
        handler = start_execution(
            flow=name,
            mode=execution.mode,
            trigger=Execution.Trigger.ERROR_HANDLER,
            trigger_ref=str(execution.pk),
            user=execution.user,
            input_value={
                "execution_id": execution.pk,
                "flow": flow,
                "status_message": execution.message,
                "attempt": getattr(execution, "attempt", 1),  # retries are counted there, if any
            },
        )
    except Exception as exc:
        reason = exc.message if isinstance(exc, StartError) else f"{type(exc).__name__}: {exc}"
        log.warning(
            "execution %s: error handler %r not started: %s", execution.pk, name, reason,
            extra={"execution_id": execution.pk, "flow": flow},
        )
        _note(execution, ExecutionLog.Level.WARNING, f"error handler {name!r} not started: {reason}")
        return None
    _note(execution, ExecutionLog.Level.INFO, f"error handler {name!r} started as execution {handler.pk}")
    return handler


def _note(execution: Execution, level: str, text: str) -> None:
    try:
        ExecutionLog.objects.create(execution_id=execution.pk, level=level, text=text)
    except Exception:  # the database went away: the worker's log has the line
        log.exception("could not log on execution %s: %s", execution.pk, text)
