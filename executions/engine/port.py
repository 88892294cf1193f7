"""The engine's side of flow_api's port: what a flow's calls do in the database."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from connectors.models import Connection
from flow_api.exceptions import (
    ExecutionParked,
    FlowApiError,
    InvalidInputError,
    LimitExceededError,
    LockTimeoutError,
    ResourceNotFoundError,
)
from flow_api.values import a_type, json_safe

from ..models import Execution, ExecutionLog, Flow, Message, Setting, Webhook
from . import ending, runner, start, stored, timers, waiting
from .guard import guard
from .records import output_too_large, protected_scrubber, record

_EXECUTION_FILTERS = {
    "id", "name", "type", "status", "mode", "parent_execution_id", "root_execution_id", "flow",
}


def _capped_log_text(execution: Execution | None, text: str, extra: int = 0) -> tuple[str, str]:
    """(text cut to LOG_ENTRY_MAX_BYTES with a note, "" or the message once the execution's
    log would pass LOG_MAX_BYTES). The running total lives on the execution object this
    process runs, so a runaway flow cannot fill the database or the worker's memory."""
    entry_max = int(settings.AUTOMATION["LOG_ENTRY_MAX_BYTES"])
    total_max = int(settings.AUTOMATION["LOG_MAX_BYTES"])
    text = str(text)
    if len(text) > entry_max // 4 and len(text.encode("utf-8", "replace")) > entry_max:
        size = len(text.encode("utf-8", "replace"))
        cut = text.encode("utf-8", "replace")[:entry_max].decode("utf-8", "ignore")
        text = f"{cut}\n[log entry truncated: {size} bytes, the limit is {entry_max}]"
    if execution is None:
        return text, ""
    total = getattr(execution, "_log_bytes", 0) + len(text) + extra  # extra: the data's JSON
    if getattr(execution, "_log_full", False) or total > total_max:
        execution._log_full = True  # type: ignore[attr-defined]
        return text, (
            f"the log of this execution passed its limit of {total_max} bytes "
            "(AUTOMATION_LOG_MAX_BYTES); further log entries are refused"
        )
    execution._log_bytes = total  # type: ignore[attr-defined]
    return text, ""


def _next_step(execution: Execution) -> int:
    """Number the flow_api calls that start something (children, message forms) in the
    order the handler makes them; a resumed handler makes them in the same order."""
    execution._step = getattr(execution, "_step", 0) + 1  # type: ignore[attr-defined]
    return execution._step  # type: ignore[attr-defined]


def _replaying(execution: Execution | None) -> bool:
    """A resumed handler is still before the last call its earlier runs made: what it logs
    there was logged already."""
    if execution is None or not execution.resumes:
        return False
    last = getattr(execution, "_replay_until", None)
    if last is None:
        last = max(
            Execution.objects.filter(parent=execution).aggregate(m=Max("step"))["m"] or 0,
            Message.objects.filter(execution=execution).aggregate(m=Max("step"))["m"] or 0,
            *(int(step) for step in execution.sleeps or {}),
        )
        execution._replay_until = last  # type: ignore[attr-defined]
    return getattr(execution, "_step", 0) < last


_LOCK_POLL_MAX_SECONDS = 0.2  # the longest pause between two tries of a waiting acquire


def _holder_text(name: str) -> str:
    holder = Setting.objects.filter(name=name).values_list("locked_by", flat=True).first()
    return "it is not locked" if holder is None else f"it is locked by execution {holder}"


def _list_append(name: str, value: Any) -> None:
    """Append to the list of setting `name` under its row lock (created as `[value]`)."""
    with transaction.atomic():
        setting = Setting.objects.select_for_update().filter(name=name).first()
        if setting is None:
            try:
                with transaction.atomic():
                    Setting.objects.create(name=name, value=[value])
                return
            except IntegrityError:  # created meanwhile: append to that one
                setting = Setting.objects.select_for_update().get(name=name)
        if setting.value is not None and not isinstance(setting.value, list):
            raise InvalidInputError(
                f"setting {name!r} holds {a_type(setting.value)}, not a list: list_append "
                "appends to a list"
            )
        setting.value = [*(setting.value or []), value]
        setting.save(update_fields=["value", "updated_at"])


class EnginePort:
    """Implements `flow_api.port.Port` on the Django models and services."""

    def _execution(self, execution_id: int) -> Execution:
        return guard().current(execution_id) or Execution.objects.get(pk=execution_id)

    def _shielded(self):  # type: ignore[no-untyped-def]
        g = guard()
        g.raise_if_terminated()
        return g.interruptible(False)

    # --- children ------------------------------------------------------------------------
    def start_child(
        self, parent_id: int, kind: str, *, run: bool, wait: bool, name: str | None,
        inputs: dict[str, Any], target: dict[str, Any],
    ) -> dict[str, Any]:
        with self._shielded():
            parent = self._execution(parent_id)
            step = _next_step(parent)
            if parent.resumes:  # replaying after a parked wait: this call was made before?
                earlier = Execution.objects.filter(parent=parent, step=step).first()
                if earlier is not None:
                    return self._replayed(parent, earlier, wait=run and wait)
            try:
                child = start.start_execution(
                    type=kind,
                    flow=target.get("flow"),
                    script=target.get("script") or "",
                    connection=target.get("connection"),
                    connector_type=target.get("connector_type"),
                    input_value=json_safe(inputs, "input_value"),
                    name=name,
                    parent=parent,
                    run=run,
                    claim_if_served=run and wait,
                    step=step,
                    retry_policy=target.get("retry_policy"),
                    priority=target.get("priority"),
                    timeout=target.get("timeout"),
                    protect_inputs=target.get("protect_inputs"),
                    protect_outputs=target.get("protect_outputs"),
                    batch=not run and not parent.resumes,
                )
            except start.TreeLimitError as exc:
                raise LimitExceededError(exc.message) from None
            except start.StartError as exc:
                error = ResourceNotFoundError if exc.not_found else FlowApiError
                raise error(f"{exc.field}: {exc.message}") from None
            if run and wait:
                self._await(parent, child)
            return record(child)

    def _replayed(self, parent: Execution, child: Execution, *, wait: bool) -> dict[str, Any]:
        """A resumed handler repeats a call that started `child`: the same child again."""
        if wait and child.status not in Execution.ENDED:
            if child.parked:
                raise ExecutionParked()  # it still waits for its answer; so does the parent
            child = waiting.wait_for([child.pk], waiter=parent, run_inline=True)[0]
            guard().raise_if_terminated()
        return record(child)

    def _await(self, parent: Execution, child: Execution) -> None:
        if child.status == Execution.Status.RUNNING:
            runner.execute(child)  # claimed for us at creation: run it inline
        else:
            fresh = waiting.wait_for([child.pk], waiter=parent, run_inline=True)
            if fresh:
                child.__dict__.update(fresh[0].__dict__)
            guard().raise_if_terminated()

    def run_deferred(self, execution_id: int, *, wait: bool) -> dict[str, Any]:
        with self._shielded():
            child = Execution.objects.get(pk=execution_id)
            inline = start.run_deferred(child, claim_if_served=wait)
            if wait:
                parent = self._execution(child.parent_id) if child.parent_id else None
                if inline:
                    runner.execute(child)
                else:
                    child = waiting.wait_for([child.pk], waiter=parent, run_inline=True)[0]
                    guard().raise_if_terminated()
                child.refresh_from_db()
            return record(child)

    def start_children(self, caller_id: int, ids: list[int]) -> None:
        with self._shielded():
            caller = self._execution(caller_id)
            start.start_deferred_children(caller.root_id or caller.pk, ids)

    def wait(
        self, waiter_id: int | None, ids: list[int], return_when: str, timeout: float | None
    ) -> list[dict[str, Any]]:
        with self._shielded():
            waiter = self._execution(waiter_id) if waiter_id else None
            found = waiting.wait_for(
                ids, return_when=return_when, timeout=timeout, waiter=waiter, run_inline=True
            )
            guard().raise_if_terminated()
            return [record(e) for e in found]

    def read(self, execution_id: int) -> dict[str, Any]:
        execution = Execution.objects.select_related("flow", "user").filter(pk=execution_id).first()
        if execution is None:
            raise ResourceNotFoundError(f"no execution {execution_id}")
        current = guard().current(execution_id)
        if current is not None:
            current.__dict__.update(execution.__dict__)
        return record(execution)

    def cancel(self, execution_id: int) -> dict[str, Any]:
        with self._shielded():
            cancelled = ending.cancel_execution(execution_id)
        if guard().mark_terminated(cancelled):  # oneself or an ancestor: without its notice
            guard().raise_if_terminated()  # cancelling oneself or an ancestor stops here
        # Another execution (a child, say): back once its code has stopped, bounded.
        waiting.wait_stopped([execution_id, *cancelled])
        return self.read(execution_id)

    def pause(self, execution_id: int) -> dict[str, Any]:
        """Pause a running or waiting execution: it holds at its next flow_api call (at
        once when it paused itself) until resumed. A paused execution is left alone."""
        with self._shielded():
            refused = ending.pause_execution(execution_id)
            if refused is not None:
                raise FlowApiError(refused)
        if guard().current(execution_id) is not None:  # it paused itself: hold here
            waiting.hold_while_paused(execution_id)
        return record(Execution.objects.get(pk=execution_id))

    def resume(self, execution_id: int) -> dict[str, Any]:
        """Resume a paused execution (PAUSED -> RUNNING; anything else is left as it is)."""
        with self._shielded():
            ending.resume_execution(execution_id)
            return record(Execution.objects.get(pk=execution_id))

    # --- this execution ------------------------------------------------------------------
    def save(
        self, execution_id: int, *, output_value: dict[str, Any] | None, name: str | None,
        message: str | None,
    ) -> dict[str, Any]:
        with self._shielded():
            execution = self._execution(execution_id)
            fields = []
            if output_value is not None:
                output = {**execution.output_value, **json_safe(output_value, "output_value")}
                too_large = output_too_large(output)
                if too_large:
                    raise FlowApiError(too_large)
                execution.output_value = output
                fields.append("output_value")
            if name is not None:
                execution.name = str(name)[:255]
                fields.append("name")
            if message is not None:
                execution.message = str(message)
                fields.append("message")
            if fields:
                Execution.objects.filter(pk=execution_id).update(
                    **{f: getattr(execution, f) for f in fields}
                )
            return record(execution)

    def log(self, execution_id: int, level: str, text: str, data: dict[str, Any]) -> None:
        if level not in ExecutionLog.Level.values:
            raise FlowApiError(f"unknown log level {level!r}")
        with self._shielded():
            if _replaying(guard().current(execution_id)):
                return
            data = json_safe(data, "the log's data")
            current = guard().current(execution_id)
            scrubber = protected_scrubber(current) if current is not None else None
            if scrubber is not None:  # protect_inputs / protect_outputs: masked in the log too
                text, data = scrubber.text(str(text)), scrubber.json(data)
            extra = len(json.dumps(data)) if data else 0
            text, over = _capped_log_text(guard().current(execution_id), text, extra)
            if over:  # the note goes in once; the flow then ends with the error
                execution = guard().current(execution_id)
                if not getattr(execution, "_log_noted", False):
                    execution._log_noted = True
                    ExecutionLog.objects.create(
                        execution_id=execution_id, level=ExecutionLog.Level.ERROR, text=over
                    )
                raise FlowApiError(over)
            ExecutionLog.objects.create(execution_id=execution_id, level=level, text=text, data=data)

    def sleep(self, execution_id: int, seconds: float) -> None:
        with self._shielded():
            execution = self._execution(execution_id)
            timers.sleep(execution, _next_step(execution), seconds)

    # --- system --------------------------------------------------------------------------
    def setting(self, op: str, name: str, value: Any = None, description: str | None = None) -> Any:
        with self._shielded():
            if op == "exists":
                return Setting.objects.filter(name=name).exists()
            if op == "get":
                found = Setting.objects.filter(name=name).values_list("value", flat=True).first()
                exists = found is not None or Setting.objects.filter(name=name).exists()
                return exists, found
            if op == "record":
                found = Setting.objects.filter(name=name).values("value", "description").first()
                return None if found is None else {"name": name, **found}
            if op == "save":
                defaults = {"value": json_safe(value, f"setting {name!r}")}
                if description is not None:
                    defaults["description"] = str(description)
                Setting.objects.update_or_create(name=name, defaults=defaults)
                return None
            if op == "delete":
                Setting.objects.filter(name=name).delete()
                return None
            if op == "list_append":
                _list_append(name, json_safe(value, f"the value appended to setting {name!r}"))
                return None
            raise FlowApiError(f"unknown setting operation {op!r}")

    def setting_lock(
        self, execution_id: int, op: str, name: str, timeout: float | None = None
    ) -> None:
        """Acquire or release setting `name` as a lock held by `execution_id` (the calling
        execution: executions.engine.hosts checks that)."""
        if op == "release":
            with self._shielded():
                if not Setting.unlock(name, execution_id):
                    raise FlowApiError(
                        f"setting {name!r} is not locked by execution {execution_id}: "
                        f"{_holder_text(name)}"
                    )
            return None
        if op != "acquire":
            raise FlowApiError(f"unknown lock operation {op!r}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0
        ):
            raise InvalidInputError(f"timeout: a number of seconds >= 0 or None, not {timeout!r}")
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        delay = 0.005
        while True:
            with self._shielded():
                if Setting.try_lock(name, execution_id):
                    # Its runner releases its locks when its handler stops (a lock of an
                    # ended execution counts as free anyway, wherever it ended).
                    current = guard().current(execution_id)
                    if current is not None:
                        current.holds_locks = True
                    return None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                with self._shielded():
                    raise LockTimeoutError(
                        f"setting {name!r} was not acquired within {float(timeout or 0):g} s: "
                        f"{_holder_text(name)}"
                    )
            # The holder's release is seen at the next try; a cancel or the execution's
            # timeout interrupts the wait.
            pause = delay * random.uniform(0.5, 1.5)
            with guard().interruptible():
                time.sleep(pause if left is None else min(pause, left))
            delay = min(delay * 1.5, _LOCK_POLL_MAX_SECONDS)

    # Reading a setting, a flow, a connection or a webhook needs the user's view permission,
    # as listing them does: executions.engine.hosts checks it (stored.require) before the call.
    def flow_record(self, key: Any, by: str) -> dict[str, Any] | None:
        if by not in ("name", "id"):
            raise FlowApiError("by must be 'name' or 'id'")
        with self._shielded():
            flow = Flow.objects.filter(**{"name" if by == "name" else "pk": key}).first()
            return None if flow is None else stored.flow_record(flow)

    def connection_record(self, name: str) -> dict[str, Any] | None:
        with self._shielded():
            conn = Connection.objects.filter(name=name).first()
            return None if conn is None else stored.connection_record(conn)

    # --- files and other records (executions.engine.stored checks the user's permissions) --
    def file(self, execution_id: int, op: str, name: str, content_base64: str | None = None,
             content_type: str | None = None) -> Any:
        with self._shielded():
            return stored.file_op(self._execution(execution_id), op, name, content_base64,
                                  content_type)

    def records(self, execution_id: int, kind: str, filter: Any = None,
                options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._shielded():
            return stored.list_records(self._execution(execution_id), kind, filter, options)

    def save_record(self, execution_id: int, kind: str, name: str,
                    fields: dict[str, Any]) -> dict[str, Any]:
        with self._shielded():
            return stored.save_record(self._execution(execution_id), kind, name, fields)

    def record_of(self, kind: str, name: str) -> dict[str, Any] | None:
        """A webhook by name (flows and connections have their own calls)."""
        if kind != "webhook":
            raise FlowApiError(f"no record kind {kind!r}")
        with self._shielded():
            hook = Webhook.objects.select_related("flow").filter(name=name).first()
            return None if hook is None else stored.webhook_record(hook)

    def executions(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        unknown = set(filters) - _EXECUTION_FILTERS
        if unknown:
            raise FlowApiError(f"unknown execution filter(s): {', '.join(sorted(unknown))}")
        renamed = {
            "parent_execution_id": "parent_id", "root_execution_id": "root_id", "flow": "flow__name",
        }
        query = Q(**{renamed.get(k, k): v for k, v in filters.items()})
        with self._shielded():
            found = Execution.objects.select_related("flow", "user").filter(query)[:1000]
            return [record(e) for e in found]

    def user(self, execution_id: int) -> dict[str, Any]:
        with self._shielded():
            execution = self._execution(execution_id)
            user = execution.user
            if user is None:
                return {"id": None, "name": None}
            return {"id": user.pk, "name": user.get_username(), "email": getattr(user, "email", "")}

    def user_record(self, name: str) -> dict[str, Any] | None:
        with self._shielded():
            found = get_user_model().objects.filter(
                **{get_user_model().USERNAME_FIELD: name}).first()
            if found is None:
                return None
            return {"id": found.pk, "name": found.get_username(), "is_active": found.is_active}

    def env_name(self) -> str:
        return str(settings.AUTOMATION["ENV_NAME"])

    def message(self, op: str, execution_id: int | None, **kwargs: Any) -> dict[str, Any]:
        if _message_ops is None:
            raise FlowApiError("message forms are not available here")
        with self._shielded():
            execution = self._execution(execution_id) if execution_id is not None else None
            step = _next_step(execution) if execution is not None and op == "create" else None
            return _message_ops(op, execution, step, **kwargs)

    # --- schedules -----------------------------------------------------------------------
    def save_schedule(self, execution_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """A schedule a flow makes is owned by the execution's user: it fires with that
        user's rights at each firing (executions.schedules.firing)."""
        if _save_schedule is None:
            raise FlowApiError("schedules are not available here")
        with self._shielded():
            return _save_schedule(fields, owner=self._execution(execution_id).user)


# The features behind two of the port's calls: message forms and schedules live in rooms
# above the engine (executions.messages, executions.schedules), which plug themselves in
# at start (executions.signals) instead of the engine importing them.
_message_ops: Callable[..., dict[str, Any]] | None = None
_save_schedule: Callable[..., dict[str, Any]] | None = None


def install_features(
    *, message_ops: Callable[..., dict[str, Any]],
    save_schedule: Callable[..., dict[str, Any]],
) -> None:
    """Plug in the features the port's `message` and `save_schedule` calls reach."""
    global _message_ops, _save_schedule
    _message_ops, _save_schedule = message_ops, save_schedule
