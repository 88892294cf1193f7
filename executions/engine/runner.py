"""Runs one claimed execution in this process: compile, call the handler, record the end."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import linecache
import logging
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from types import CodeType, TracebackType
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

import flow_api
from flow_api.exceptions import ExecutionEnded, ExecutionParked, ExecutionTerminated, FlowApiError

from ..models import Execution, ExecutionLog, Flow
from . import connections, limits, notify, parking, transitions
from .guard import guard
from .records import a_type, json_safe, output_too_large, record

log = logging.getLogger(__name__)
Status = Execution.Status
PARKED = "PARKED"  # _run_handler's word for "its wait was parked": nothing to record yet

_CODE_CACHE: OrderedDict[tuple[Any, ...], tuple[CodeType, str]] = OrderedDict()
_CODE_CACHE_SIZE = 512


class ScriptError(Exception):
    """The script cannot run: it does not compile, has no handler, or a wrong signature."""


def _compile(key: tuple[Any, ...], source: str, filename: str) -> tuple[CodeType, str]:
    cached = _CODE_CACHE.get(key)
    if cached is not None:
        _CODE_CACHE.move_to_end(key)
        return cached
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise ScriptError(f"SyntaxError: {exc.msg} (line {exc.lineno} of {filename})") from None
    except ValueError as exc:
        raise ScriptError(f"the script cannot be compiled: {exc}") from None
    # So that tracebacks (and the log) show the flow's own lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    _CODE_CACHE[key] = (code, filename)
    if len(_CODE_CACHE) > _CODE_CACHE_SIZE:
        _CODE_CACHE.popitem(last=False)
    return code, filename


def _code_for(execution: Execution) -> tuple[CodeType, str]:
    if execution.type == Execution.Type.SCRIPT:
        digest = hashlib.sha1(execution.script.encode(), usedforsecurity=False).hexdigest()
        return _compile(("script", digest), execution.script, f"<script {digest[:8]}>")
    if execution.flow_id is None:
        raise ScriptError("the flow of this execution was deleted")
    key = ("flow", execution.flow_id, execution.flow_revision)
    if key in _CODE_CACHE:  # no query: the revision was recorded when it started
        _CODE_CACHE.move_to_end(key)
        return _CODE_CACHE[key]
    flow = Flow.objects.filter(pk=execution.flow_id).only("name", "script", "revision").first()
    if flow is None:
        raise ScriptError("the flow of this execution was deleted")
    if flow.revision != execution.flow_revision:  # edited since it was started: run the newest
        execution.flow_revision = flow.revision
        Execution.objects.filter(pk=execution.pk).update(flow_revision=flow.revision)
    key = ("flow", flow.pk, flow.revision)
    return _compile(key, flow.script, f"<flow {flow.name}>")


def _load_handler(execution: Execution) -> tuple[Callable[..., Any], bool, str]:
    code, filename = _code_for(execution)
    namespace: dict[str, Any] = {"__name__": f"flow_{execution.pk}", "__file__": filename}
    try:
        exec(code, namespace)
    except Exception as exc:
        raise ScriptError(_describe(exc, filename, "while loading the script")) from None
    except (ExecutionEnded, ExecutionParked, ExecutionTerminated):
        raise
    except BaseException as exc:  # SystemExit, KeyboardInterrupt... at the script's top level
        raise ScriptError(_describe_base(exc, filename)) from None
    handler = namespace.get("handler")
    if not callable(handler):
        raise ScriptError(f"the script defines no handler(system, this) function ({filename})")
    try:
        params = [
            p for p in inspect.signature(handler).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if len(params) not in (2, 3):
        raise ScriptError(
            "handler must take (system, this) or (system, this, inputs); "
            f"it takes {len(params)} argument(s) ({filename})"
        )
    return handler, len(params) == 3, filename


def _flow_line(tb: TracebackType | None, filename: str) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == filename:
            line = lineno
    return line


def _describe(exc: BaseException, filename: str, where: str = "") -> str:
    line = _flow_line(exc.__traceback__, filename)
    text = f"{type(exc).__name__}: {exc}"
    if line is not None:
        return f"{text} (line {line} of {filename})"
    return f"{text} ({where or 'outside the flow script'})"


def _describe_base(exc: BaseException, filename: str) -> str:
    """A BaseException from flow code: its name, its text if any, and the flow's line."""
    line = _flow_line(exc.__traceback__, filename)
    if isinstance(exc, SystemExit):
        where = f" (line {line} of {filename})" if line is not None else ""
        return f"the flow called sys.exit({exc.code!r}){where}"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    where = f"line {line} of {filename}" if line is not None else "outside the flow script"
    return f"{text} raised by the flow ({where})"


def _flow_traceback(exc: BaseException, filename: str) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def execute(execution: Execution) -> str:
    """Run a RUNNING execution here to its end; return its final status.

    Cancellation and timeouts arrive as `ExecutionTerminated`; by then the row has been
    ended by whoever cancelled it, so only the bookkeeping of this process is left.
    A parked wait (executions.engine.parking) arrives as `ExecutionParked`: the execution is
    parked and, if it ran inline in a parent's process, the parent parks too.
    """
    g = guard()
    with g.frame(execution):
        status, message, output = _run_handler(execution)
    if status == PARKED:
        # A message wait (waiting_message set) resumes at once if answered meanwhile.
        with_db_retry(lambda: parking.park_wait(execution, execution.waiting_message_id))
        if g.frames:  # a parent in this process awaited it: it leaves and parks as well
            raise ExecutionParked()
        return Status.WAITING

    def record_end() -> str:
        if status is not None and transitions.mark_ended(
            execution, status, message, output_value=output
        ):
            notify.publish_ended(execution.pk, status)
            log.info(
                "execution %s ended %s", execution.pk, status,
                extra={"execution_id": execution.pk, "flow": execution.name, "status": status},
            )
            if execution.resumes and execution.parent_id:  # its parent may have parked for it
                parking.resume_parents([execution.pk])
            return status
        execution.refresh_from_db(fields=["status", "message", "ended_at"])
        return execution.status

    final = with_db_retry(record_end)
    if getattr(execution, "concurrency_limited", False):  # set by executions.engine.limits.claim
        _release_slot(execution)
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
    g = guard()
    filename = ""
    if execution.resumes:
        ExecutionLog.objects.create(
            execution_id=execution.pk,
            text=f"resumed after a parked wait (resume {execution.resumes}): the handler runs "
            "again from its start; the children and message forms it started before are not "
            "started again, their results are returned",
        )
    try:
        with flow_output(execution.pk):
            handler, takes_inputs, filename = _load_handler(execution)
            this = flow_api.Execution(record(execution))
            system = flow_api.System(execution.pk)
            args: tuple[Any, ...] = (system, this)
            if takes_inputs:
                args = (system, this, dict(execution.input_value))
            with g.interruptible():
                result = handler(*args)
    except ExecutionParked:
        return PARKED, "", None
    except ExecutionEnded as end:
        return end.status, end.message, None
    except ExecutionTerminated:
        if g.is_terminated(execution.pk):
            return None, "", None
        return Status.ENDED_CANCELLED, "cancelled with its parent", None
    except ScriptError as exc:
        return Status.ENDED_ERROR, str(exc), None
    except SystemExit as exc:  # a BaseException: it would otherwise stop the worker process
        return Status.ENDED_ERROR, _describe_base(exc, filename), None
    except Exception as exc:
        ExecutionLog.objects.create(
            execution_id=execution.pk,
            level=ExecutionLog.Level.ERROR,
            text=_flow_traceback(exc, filename),
        )
        return Status.ENDED_ERROR, _describe(exc, filename), None
    except BaseException as exc:  # KeyboardInterrupt, GeneratorExit, BaseException itself...
        # Left to Celery, these would leave the row RUNNING or kill the pool process.
        if g.any_terminated():  # the flow turned the cancel interrupt into something else
            if g.is_terminated(execution.pk):
                return None, "", None
            return Status.ENDED_CANCELLED, "cancelled with its parent", None
        ExecutionLog.objects.create(
            execution_id=execution.pk,
            level=ExecutionLog.Level.ERROR,
            text=_flow_traceback(exc, filename),
        )
        return Status.ENDED_ERROR, _describe_base(exc, filename), None
    if isinstance(result, ExecutionEnded):  # `return this.success()` never gets here; safe anyway
        return result.status, result.message, None
    if result is None:
        return Status.ENDED_SUCCESS, execution.message, None
    if not isinstance(result, dict):  # never dropped in silence: the flow meant to return it
        return Status.ENDED_ERROR, (
            f"the handler returned {a_type(result)}; it may return a dict of "
            "outputs (output_value) or None"
        ), None
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


class _FlowStream(io.TextIOBase):
    """sys.stdout or sys.stderr while a flow runs: each line goes into the execution's log,
    through the port's `log`, so under the same caps as `this.log` (and never into the
    worker's own log)."""

    def __init__(self, execution_id: int, level: str) -> None:
        super().__init__()
        self.execution_id = execution_id
        self.level = level
        self.pending: list[str] = []
        self.size = 0
        self.sending = False  # what the log call itself writes (a warning) is not logged again

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        if self.sending:
            return len(text)
        self.pending.append(text)
        self.size += len(text)
        if "\n" in text or self.size > int(settings.AUTOMATION["LOG_ENTRY_MAX_BYTES"]):
            self._send(final=False)
        return len(text)

    def flush(self) -> None:
        self._send(final=True)

    def _send(self, *, final: bool) -> None:
        buffered = "".join(self.pending)
        if final or self.size > int(settings.AUTOMATION["LOG_ENTRY_MAX_BYTES"]):
            entry, rest = buffered, ""  # a long line without an end goes in as it is
        else:  # whole lines go in now, the unfinished last one waits for its end
            cut = buffered.rfind("\n") + 1
            entry, rest = buffered[:cut], buffered[cut:]
        self.pending, self.size = ([rest], len(rest)) if rest else ([], 0)
        if not entry:
            return
        # PostgreSQL's text holds no NUL and no lone surrogate: show them escaped instead.
        entry = entry.removesuffix("\n").replace("\x00", "\\x00")
        entry = entry.encode("utf-8", "backslashreplace").decode("utf-8")
        self.sending = True
        try:
            flow_api.port.get().log(self.execution_id, self.level, entry, {})
        finally:
            self.sending = False


@contextlib.contextmanager
def flow_output(execution_id: int) -> Iterator[None]:
    """Capture the flow's print() and stderr into its execution log while the block runs."""
    streams = _FlowStream(execution_id, "INFO"), _FlowStream(execution_id, "WARNING")
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = streams
    try:
        yield
    except BaseException:
        with contextlib.suppress(BaseException):  # the flow's own exception is what counts
            for stream in streams:
                stream.flush()
        raise
    else:
        for stream in streams:  # over the log's cap: FlowApiError, as this.log would raise
            stream.flush()
    finally:
        sys.stdout, sys.stderr = saved


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
        return Status.ENDED_ERROR, f"{type(exc).__name__}: {exc}", None
    return Status.ENDED_SUCCESS, execution.message, output
