"""Runs one claimed execution: its handler in a flow host (executions.engine.hosts), or a
connector or schedule here; then records the end."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from flow_api.exceptions import ExecutionParked, ExecutionTerminated, FlowApiError
from flow_api.values import json_safe

from ..models import Execution, ExecutionLog, Flow, FlowRevision, Message, Setting
from . import (
    connections,
    error_handlers,
    hosts,
    limits,
    notify,
    parking,
    retries,
    start,
    transitions,
)
from .guard import guard
from .records import output_too_large

log = logging.getLogger(__name__)
Status = Execution.Status
PARKED = "PARKED"  # _run_handler's word for "its wait was parked": nothing to record yet
RETRYING = "RETRYING"  # record_end's word for "its next attempt is scheduled" (engine/retries.py)

_SOURCE_CACHE: OrderedDict[tuple[Any, ...], tuple[str, str]] = OrderedDict()
_SOURCE_CACHE_SIZE = 512


class ScriptError(Exception):
    """The script cannot run: its flow was deleted."""


def _source_for(execution: Execution) -> tuple[str, str, str]:
    """(source, filename, key): what the flow host compiles, and the key it caches it by."""
    if execution.type == Execution.Type.SCRIPT:
        digest = hashlib.sha1(execution.script.encode(), usedforsecurity=False).hexdigest()
        return execution.script, f"<script {digest[:8]}>", f"script:{digest}"
    if execution.flow_id is None:
        raise ScriptError("the flow of this execution was deleted")
    key = ("flow", execution.flow_id, execution.flow_revision)
    if key not in _SOURCE_CACHE:  # else no query: the revision was recorded when it started
        flow = Flow.objects.filter(pk=execution.flow_id).only("name", "script", "revision").first()
        if flow is None:
            raise ScriptError("the flow of this execution was deleted")
        script, revision = flow.script, flow.revision
        if revision != execution.flow_revision:
            # Edited since it started: it runs the revision it was started with (a Try of
            # unsaved edits saved them as that revision), or the newest where none is kept.
            pinned = FlowRevision.objects.filter(
                flow_id=flow.pk, revision=execution.flow_revision or 0
            ).values_list("script", flat=True).first()
            if pinned is not None:
                script, revision = pinned, execution.flow_revision or 0
            else:
                execution.flow_revision = revision
                Execution.objects.filter(pk=execution.pk).update(flow_revision=revision)
        key = ("flow", flow.pk, revision)
        _SOURCE_CACHE[key] = (script, f"<flow {flow.name}>")
        if len(_SOURCE_CACHE) > _SOURCE_CACHE_SIZE:
            _SOURCE_CACHE.popitem(last=False)
    _SOURCE_CACHE.move_to_end(key)
    source, filename = _SOURCE_CACHE[key]
    return source, filename, f"flow:{key[1]}:{key[2]}"


def execute(execution: Execution) -> str:
    """Run a RUNNING execution here to its end; return its final status.

    Cancellation and timeouts arrive as `ExecutionTerminated`; the row was asked to stop
    (transitions.request_stop) and ends as asked here, once its code no longer runs.
    A parked wait (executions.engine.parking) arrives as `ExecutionParked`: the execution is
    parked and, if it ran inline in a parent's process, the parent parks too.
    """
    g = guard()
    attempt_started = timezone.now()
    with g.frame(execution):
        status, message, output = _run_handler(execution)
    # The run=False children its handler created are written (however it ended).
    with_db_retry(start.flush_batched)
    if status == PARKED:
        # A message wait (waiting_message set) resumes at once if answered meanwhile.
        parked = with_db_retry(lambda: parking.park_wait(execution, execution.waiting_message_id))
        if parked or not Execution.objects.filter(pk=execution.pk).exclude(stop_status="").exists():
            if g.frames:  # a parent in this process awaited it: it leaves and parks as well
                raise ExecutionParked()
            return Status.WAITING
        status = None  # asked to stop before it could park: it ends as asked

    def record_end() -> str:
        if status == Status.ENDED_ERROR and retries.schedule_retry(
            execution, message, getattr(execution, "_error_types", []), attempt_started
        ):
            return RETRYING
        # status None: it was stopped (a cancel, a timeout), and ends as that asked.
        if (
            transitions.mark_ended(execution, status, message, output_value=output)
            if status is not None else transitions.end_as_requested(execution)
        ):
            final = execution.status
            notify.publish_ended(execution.pk, final)
            log.info(
                "execution %s ended %s", execution.pk, final,
                extra={"execution_id": execution.pk, "flow": execution.name, "status": final},
            )
            # Its parent may have parked for it: not when it ran inline in its parent here.
            if execution.parent_id and (execution.resumes or not g.frames):
                parking.resume_parent(execution.parent_id)
            if final == Status.ENDED_ERROR:
                error_handlers.after_error([execution.pk])
            return final
        execution.refresh_from_db(fields=["status", "message", "ended_at"])
        return execution.status

    if getattr(execution, "holds_locks", False):  # set by the port's setting_lock (acquire)
        with_db_retry(lambda: Setting.release_locks(execution.pk))  # its handler stopped, however
    if getattr(execution, "holds_secret_answers", False):  # set by messages.message_record
        # The flow had its password answers; nobody needs them once its handler stopped.
        with_db_retry(lambda: Message.objects.filter(execution=execution.pk).update(secret_response={}))
    final = with_db_retry(record_end)
    if getattr(execution, "concurrency_limited", False):  # set by executions.engine.limits.claim
        _release_slot(execution)
    lost = getattr(execution, "_host_lost", None)
    if lost is not None and hosts.broken():  # its parent ran in the same host, now gone
        raise lost
    if final == RETRYING:  # parked until its next attempt, as a parked wait
        if g.frames:
            raise ExecutionParked()
        return Status.WAITING
    if g.any_terminated():
        raise ExecutionTerminated()  # an ancestor in this process was cancelled too
    return final


def _release_slot(execution: Execution) -> None:
    """Its flow has a concurrency limit: let the oldest waiting execution have the slot."""
    try:
        with_db_retry(lambda: limits.release(execution))
    except Exception:  # the waiting ones are then sent by the reconciler's next pass
        log.exception("could not release the concurrency slot of execution %s", execution.pk)


def with_db_retry(action: Callable[[], Any], deadline_seconds: float = 60) -> Any:
    """Run `action`, retrying across a database restart (bounded), so that work already
    done is recorded with its real outcome rather than ending up "worker lost"."""
    deadline = time.monotonic() + deadline_seconds
    delay = 0.2
    while True:
        try:
            return action()
        except (OperationalError, InterfaceError):
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database unavailable; retrying in %.1f s", delay)
            close_old_connections()
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 5)


def _run_handler(execution: Execution) -> tuple[str | None, str, dict[str, Any] | None]:
    """(status, message, output_value or None if unchanged); status None if already ended."""
    if execution.type in (Execution.Type.CONNECTION, Execution.Type.SCHEDULE):
        return _run_builtin(execution)
    isolation = hosts.isolation()
    if isolation.refused:
        return Status.ENDED_ERROR, f"{isolation.description} (AUTOMATION_FLOW_ISOLATION=full)", None
    g = guard()
    if execution.retry_pending:
        ExecutionLog.objects.create(
            execution_id=execution.pk,
            text=f"attempt {execution.attempt} of {execution.retry_policy.get('max_attempts')} "
            "starts: the handler runs afresh",
        )
    elif execution.resumes:
        ExecutionLog.objects.create(
            execution_id=execution.pk,
            text=f"resumed after a parked wait (resume {execution.resumes}): the handler runs "
            "again from its start; the children and message forms it started before are not "
            "started again, their results are returned",
        )
    try:
        source, filename, key = _source_for(execution)
        done = hosts.run(execution, source, filename, key)
    except ScriptError as exc:
        return Status.ENDED_ERROR, str(exc), None
    except hosts.HostLost as lost:
        execution._host_lost = lost  # type: ignore[attr-defined]
        execution._error_types = ["HostLost", "WorkerLost"]  # type: ignore[attr-defined]
        done = {"kind": "terminated" if g.any_terminated() else "error", "message": str(lost)}
    kind = done.get("kind")
    if kind == "parked":
        return PARKED, "", None
    if kind == "terminated" or g.any_terminated():
        if g.is_terminated(execution.pk):
            return None, "", None
        return Status.ENDED_CANCELLED, "cancelled with its parent", None
    if kind == "ended" and done.get("status") in Execution.ENDED:
        return str(done["status"]), _text(done.get("message")), None
    if kind == "returned":
        return _returned(execution, done.get("output"))
    types = done.get("error_types")
    if isinstance(types, list) and not hasattr(execution, "_error_types"):
        execution._error_types = [str(t)[:100] for t in types[:50]]  # type: ignore[attr-defined]
    if done.get("traceback"):
        ExecutionLog.objects.create(
            execution_id=execution.pk, level=ExecutionLog.Level.ERROR, text=_text(done["traceback"]),
        )
    return Status.ENDED_ERROR, _text(done.get("message")) or "the flow host gave no outcome", None


def _text(value: Any) -> str:
    """What the host said, as text of a bounded size (the host is not trusted)."""
    text = str(value or "")
    limit = int(settings.AUTOMATION["LOG_ENTRY_MAX_BYTES"])
    return text if len(text) <= limit else text[:limit] + " [cut]"


def _returned(execution: Execution, result: Any) -> tuple[str, str, dict[str, Any] | None]:
    if result is None:
        return Status.ENDED_SUCCESS, execution.message, None
    if not isinstance(result, dict):
        return Status.ENDED_ERROR, "the handler's returned outputs: not a dict", None
    try:
        result = json_safe(result, "output_value")
    except FlowApiError as exc:  # the flow's fault, not the engine's: say so
        return Status.ENDED_ERROR, f"the handler's returned outputs: {exc}", None
    output = {**execution.output_value, **result}
    too_large = output_too_large(output)
    if too_large:
        return Status.ENDED_ERROR, f"the handler's returned outputs: {too_large}", None
    execution.output_value = output
    return Status.ENDED_SUCCESS, execution.message, execution.output_value


# What runs a CONNECTION or SCHEDULE execution instead of a script: `run(execution)` returns
# its output_value. The schedules feature adds its own at start (executions.signals), so the
# engine does not import a layer above it.
BUILTINS: dict[str, Callable[[Execution], dict[str, Any]]] = {
    Execution.Type.CONNECTION: connections.run,
}


def register_builtin(kind: str, run: Callable[[Execution], dict[str, Any]]) -> None:
    """Let executions of type `kind` be carried out by `run` (e.g. SCHEDULE: a firing)."""
    BUILTINS[kind] = run


def _run_builtin(execution: Execution) -> tuple[str | None, str, dict[str, Any] | None]:
    """CONNECTION and SCHEDULE executions run engine code instead of a script."""
    run = BUILTINS.get(execution.type)
    if run is None:
        return Status.ENDED_ERROR, f"{execution.type} executions are not available here", None
    try:
        output = run(execution)
    except ExecutionParked:  # a SCHEDULE execution whose flow, run inline, parked
        return PARKED, "", None
    except ExecutionTerminated:
        if guard().is_terminated(execution.pk):
            return None, "", None
        return Status.ENDED_CANCELLED, "cancelled with its parent", None
    except Exception as exc:
        execution._error_types = [kind.__name__ for kind in type(exc).__mro__[:-1]]  # type: ignore[attr-defined]
        return Status.ENDED_ERROR, f"{type(exc).__name__}: {exc}", None
    return Status.ENDED_SUCCESS, execution.message, output
