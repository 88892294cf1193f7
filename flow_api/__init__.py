"""The API that flow scripts import.

A flow is a Python script with a handler::

    import flow_api

    def handler(system: flow_api.System, this: flow_api.Execution):
        child = this.flow('my-child-flow', custom_parameter='value')
        this.log('child said', output=child.get('output_value'))
        return this.success('all done')

The names, arguments and return values follow Cloudomation's documented `flow_api`, so
flows written for it run here with few or no changes. This package never imports Django:
it reaches the engine through one narrow port (`flow_api.port`).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from . import port as _port
from .exceptions import (
    CloudomationException,
    DependencyFailedError,
    DependencyTimeoutError,
    ExecutionEnded,
    ExecutionTerminated,
    ExtraInputError,
    FlowApiError,
    InternalError,
    InvalidInputError,
    LockTimeoutError,
    MessageResponseTimeoutError,
    MissingInputError,
    PermissionDenied,
    ResourceNotFoundError,
    TimeoutExceededError,
)

__all__ = [
    "CloudomationException",
    "Connection",
    "DependencyFailedError",
    "DependencyTimeoutError",
    "Execution",
    "ExecutionEnded",
    "ExecutionTerminated",
    "ExtraInputError",
    "Flow",
    "FlowApiError",
    "InternalError",
    "InvalidInputError",
    "LockTimeoutError",
    "Message",
    "MessageResponseTimeoutError",
    "MissingInputError",
    "PermissionDenied",
    "ResourceNotFoundError",
    "ReturnWhen",
    "Setting",
    "System",
    "TimeoutExceededError",
    "User",
]

_FIELDS = (
    "id", "name", "type", "status", "mode", "message", "input_value", "output_value",
    "parent_execution_id", "root_execution_id", "created_at", "started_at", "ended_at",
    "modified_at", "creation_time", "flow_id", "flow_name", "user_name", "created_by",
    "connector_type", "is_productive", "is_paused", "priority", "max_runtime_minutes",
    "protect_inputs", "protect_outputs", "client_name",
)
# Call options of flow/script/connect/task (Cloudomation's names): never inputs.
_OPTIONS = (
    "input_value", "init", "priority", "protect_inputs", "protect_outputs",
    "max_runtime_minutes", "retention_time", "savepoint_retention", "pass_user_token",
    "pass_token", "location_inheritance", "orphan", "roles",
)
# Accepted for flows written for Cloudomation; they change nothing here (README-cloudomation).
_NO_EFFECT = (
    "retention_time", "savepoint_retention", "pass_user_token", "pass_token",
    "location_inheritance", "orphan", "roles", "description",
)
_PRIORITIES = ("high", "normal", "low")
_ENDED = ("ENDED_SUCCESS", "ENDED_ERROR", "ENDED_CANCELLED")


class ReturnWhen(enum.StrEnum):
    """When `wait_for` returns (also reachable as `system.return_when`)."""

    ALL_ENDED = "ALL_ENDED"
    ALL_SUCCEEDED = "ALL_SUCCEEDED"
    FIRST_ENDED = "FIRST_ENDED"
    FIRST_SUCCEEDED = "FIRST_SUCCEEDED"


class Execution:
    """An execution: `this` in a handler, or a child it started.

    Read fields with `get` (cached) or `load` (always re-read from the database).
    """

    def __init__(self, record: dict[str, Any], caller: int | None = None) -> None:
        self._record = dict(record)
        self.id: int = record["id"]
        # The execution whose handler holds this object (children are started as its own).
        self._caller: int = caller if caller is not None else self.id

    def __repr__(self) -> str:
        return f"<Execution {self.id} {self._record.get('name', '')!r} {self._record.get('status')}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Execution) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # --- reading -------------------------------------------------------------------------
    def get(self, *fields: Any, default: Any = None) -> Any:
        """Return a field, or a tuple for several: `get('status')`, `get('status',
        'message')`. Fields: id, name, type, status, mode, message, input_value,
        output_value, parent_execution_id, root_execution_id, created_at, started_at,
        ended_at, modified_at, creation_time, flow_id, flow_name, user_name, created_by,
        connector_type, is_productive, is_paused, priority, max_runtime_minutes,
        protect_inputs, protect_outputs, client_name (always None: no clients here).
        Cached; see `load`. `get('field', value)` whose second argument is no field name
        is the older form: value is the default."""
        fields, default = _split_fields(fields, default)
        values = tuple(self._field(f, default) for f in fields)
        return values[0] if len(values) == 1 else values

    def _field(self, field: str, default: Any) -> Any:
        if field not in _FIELDS:
            raise FlowApiError(f"unknown execution field {field!r}; known: {', '.join(_FIELDS)}")
        if field not in self._record:
            self._record = _port.get().read(self.id)
        value = self._record.get(field, default)
        return default if value is None else value

    def load(self, *fields: Any, default: Any = None) -> Any:
        """Re-read the execution from the database; return the field(s) like `get`, or
        all fields as a dict when none is named."""
        self._record = _port.get().read(self.id)
        if not fields:
            return dict(self._record)
        return self.get(*fields, default=default)

    # --- children ------------------------------------------------------------------------
    def _child(
        self, kind: str, target: dict[str, Any], inputs: dict[str, Any] | None,
        kwargs: dict[str, Any], name: str | None, run: bool, wait: bool | ReturnWhen | str,
    ) -> Execution:
        options = {k: kwargs.pop(k) for k in _OPTIONS if k in kwargs}
        init = options.pop("init", None)
        if init is not None:  # Cloudomation's record fields to create the child with
            if not isinstance(init, dict):
                raise FlowApiError("init must be a dict of execution fields")
            for key, value in init.items():
                if key == "name":
                    name = name if name is not None else value
                elif key not in _OPTIONS or key == "init":
                    if key not in _NO_EFFECT:
                        raise FlowApiError(
                            f"init: unknown execution field {key!r}; known: name, "
                            + ", ".join(k for k in _OPTIONS if k != "init"))
                else:
                    options.setdefault(key, value)
        input_value = options.get("input_value")
        for label, given in (("input_value", input_value), ("inputs", inputs)):
            if given is not None and not isinstance(given, dict):
                raise FlowApiError(f"{label} must be a dict")
        merged = {**(input_value or {}), **(inputs or {}), **kwargs}
        target = {**target, **_start_options(options)}
        waits, raises = _wait_mode(wait)
        record = _port.get().start_child(
            self.id, kind, run=run, wait=waits, name=name, inputs=merged, target=target
        )
        child = Execution(record, caller=self._caller)
        if run and waits and raises:
            child._raise_unless_succeeded()
        return child

    def flow(
        self, flow_name: str, inputs: dict[str, Any] | None = None, *, name: str | None = None,
        run: bool = True, wait: bool | ReturnWhen | str = True,
        retry_policy: dict[str, Any] | None = None, **kwargs: Any,
    ) -> Execution:
        """Start a child FLOW execution of the stored flow `flow_name`.

        Extra keyword arguments are merged into `inputs`, except the call options below.
        By default the call waits for the child and raises `DependencyFailedError` unless
        it ended in success. `wait=False` starts it and returns at once;
        `wait=system.return_when.ALL_ENDED` waits without raising (read the child's
        `status` and `message`); `run=False` only creates it (start it with `run()` or
        `run_async()`). `retry_policy` overrides the flow's own for this call.

        Call options (Cloudomation's; never part of the child's inputs):
        `input_value={...}` (inputs, as the record field; merged under `inputs` and the
        keyword inputs), `init={field: value}` (the child's record fields: `input_value`,
        `name` and these options), `priority` ('high', 'normal', 'low', or a number:
        above 0 high, 0 normal, below 0 low), `protect_inputs` / `protect_outputs` (a list
        of keys, one key, or True for all: masked in the API, the admin and the log),
        `max_runtime_minutes` (its timeout). Accepted with no effect here:
        `retention_time`, `savepoint_retention`, `pass_user_token`, `pass_token`,
        `location_inheritance`, `orphan`, `roles` (see docs/README-cloudomation.md).
        """
        target = {"flow": flow_name, "retry_policy": retry_policy}
        return self._child("FLOW", target, inputs, kwargs, name, run, wait)

    def script(
        self, source: str, inputs: dict[str, Any] | None = None, *, name: str | None = None,
        run: bool = True, wait: bool | ReturnWhen | str = True,
        retry_policy: dict[str, Any] | None = None, **kwargs: Any,
    ) -> Execution:
        """Start a child SCRIPT execution of inline Python `source` (same handler contract
        and call options as `flow`)."""
        target = {"script": source, "retry_policy": retry_policy}
        return self._child("SCRIPT", target, inputs, kwargs, name, run, wait)

    def connect(
        self, connection_name: str | None = None, *, connector_type: str | None = None,
        inputs: dict[str, Any] | None = None, name: str | None = None, run: bool = True,
        wait: bool | ReturnWhen | str = True, retry_policy: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Execution:
        """Start a child CONNECTION execution.

        Either of a stored connection (its stored inputs, overridden by the call's) or of
        an inline `connector_type` ('REST', 'SQLPG', 'SSH', 'SMTP'). The inputs are
        `inputs={...}` and the keyword arguments (the call options of `flow` are options,
        not inputs). Waits and raises `DependencyFailedError` if the call failed, unless
        `wait=False` / `wait=system.return_when.ALL_ENDED` / `run=False`. The connector's
        result is in `child.get('output_value')`.
        """
        if not connection_name and not connector_type:
            raise FlowApiError("connect() needs a connection name or connector_type=")
        target = {"connection": connection_name, "connector_type": connector_type,
                  "retry_policy": retry_policy}
        return self._child("CONNECTION", target, inputs, kwargs, name, run, wait)

    def task(self, connector_type: str, inputs: dict[str, Any] | None = None, *,
             name: str | None = None, run: bool = True, wait: bool | ReturnWhen | str = True,
             retry_policy: dict[str, Any] | None = None, **kwargs: Any) -> Execution:
        """The older spelling of `connect(connector_type=..., inputs=...)`."""
        return self.connect(connector_type=connector_type, inputs=inputs, name=name, run=run,
                            wait=wait, retry_policy=retry_policy, **kwargs)

    def clone(self, *, name: str | None = None, run: bool = True,
              wait: bool | ReturnWhen | str = False, **kwargs: Any) -> Execution:
        """Start a new execution of the same flow with the same inputs (a FLOW execution
        only), as a child of the calling execution; keyword arguments override inputs or
        give call options as for `flow`. It does not wait unless `wait` says so."""
        if self.get("type") != "FLOW" or not self.get("flow_id"):
            raise FlowApiError("clone() copies a FLOW execution of a stored flow only")
        caller = Execution({"id": self._caller}) if self._caller != self.id else self
        target = {"flow": self.get("flow_id"), "retry_policy": None}
        inputs = dict(self.get("input_value") or {})
        return caller._child("FLOW", target, inputs, kwargs, name or self.get("name"), run, wait)

    def run(self) -> Execution:
        """Start a child created with `run=False` and wait for it; raises like `flow()`."""
        self._record = _port.get().run_deferred(self.id, wait=True)
        self._raise_unless_succeeded()
        return self

    def run_async(self) -> Execution:
        """Start a child created with `run=False` and return at once."""
        self._record = _port.get().run_deferred(self.id, wait=False)
        return self

    def wait(
        self, return_when: ReturnWhen | str = ReturnWhen.ALL_SUCCEEDED,
        timeout: float | None = None,
    ) -> Execution:
        """Wait until this (child) execution ended. With the default `ALL_SUCCEEDED` it
        raises `DependencyFailedError` unless it ended in success."""
        _wait_for(None, [self], return_when, timeout)
        return self

    def cancel(self) -> Execution:
        """Cancel this execution and all its descendants."""
        _port.get().cancel(self.id)
        return self

    def wait_for(
        self, *executions: Execution | Iterable[Execution],
        return_when: ReturnWhen | str = ReturnWhen.ALL_SUCCEEDED, timeout: float | None = None,
    ) -> list[Execution]:
        """Wait for several executions; returns them (refreshed).

        `ALL_ENDED`, `ALL_SUCCEEDED` (default; raises `DependencyFailedError` as soon as
        one fails), `FIRST_ENDED`, `FIRST_SUCCEEDED` (raises if all ended and none
        succeeded). `timeout` in seconds raises `TimeoutExceededError`.
        """
        flat: list[Execution] = []
        for item in executions:
            if isinstance(item, Execution):
                flat.append(item)
            else:
                flat.extend(item)
        return _wait_for(self.id, flat, return_when, timeout)

    def _raise_unless_succeeded(self) -> None:
        status = self._record.get("status")
        if status != "ENDED_SUCCESS":
            raise DependencyFailedError(
                f"{self._record.get('type', 'FLOW').lower()} execution {self.id} "
                f"{self._record.get('name', '')!r} ended {status}: {self._record.get('message', '')}",
                [self],
            )

    # --- this execution ------------------------------------------------------------------
    def save(
        self, output_value: dict[str, Any] | None = None, name: str | None = None,
        message: str | None = None,
    ) -> Execution:
        """Store outputs (merged into output_value), rename, or set the status message."""
        if output_value is not None and not isinstance(output_value, dict):
            raise FlowApiError("output_value must be a dict")
        self._record = _port.get().save(
            self.id, output_value=output_value, name=name, message=message
        )
        return self

    def set_output(self, key: str | None = None, value: Any = None, **values: Any) -> Execution:
        """Set one output key (`set_output('k', v)`) or several (`set_output(k=v, ...)`)."""
        if key is not None:
            values[key] = value
        return self.save(output_value=values)

    def log(self, *args: Any, level: str = "INFO", **kwargs: Any) -> None:
        """Append a structured log entry: the positional args as text, keywords as data."""
        text = " ".join(str(a) for a in args)
        _port.get().log(self.id, level.upper(), text, kwargs)

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`; the execution is WAITING meanwhile and can be cancelled."""
        _port.get().sleep(self.id, float(seconds))

    def sleep_until(self, timestamp: float | datetime | str) -> None:
        """Wait until a moment (epoch seconds, datetime, or ISO 8601 text)."""
        if isinstance(timestamp, str):
            timestamp = datetime.fromisoformat(timestamp)
        if isinstance(timestamp, datetime):
            timestamp = timestamp.timestamp()
        self.sleep(max(0.0, float(timestamp) - time.time()))

    def message(
        self, subject: str, message: str | None = None, *, body: dict[str, Any] | None = None,
        request: str | None = None, wait: bool = True, timeout: float | None = None,
    ) -> Any:
        """Ask a user through a message form (see `System.message`).

        With `wait` (default) the execution is WAITING until the form is answered, and the
        response (a dict) is returned; else the `Message` is returned at once.
        """
        record = _port.get().message(
            "create", self.id, subject=subject, text=message, body=body, request=request
        )
        msg = Message(record, self.id)
        if not wait:
            return msg
        return msg.wait(timeout=timeout).get("response")

    def success(self, message: str | None = None) -> ExecutionEnded:
        """End this execution ENDED_SUCCESS now (use as `return this.success('done')`)."""
        raise ExecutionEnded("ENDED_SUCCESS", message)

    def error(self, message: str | None = None) -> ExecutionEnded:
        """End this execution ENDED_ERROR now with `message`."""
        raise ExecutionEnded("ENDED_ERROR", message)

    def end(self, status: str, message: str | None = None) -> ExecutionEnded:
        """End this execution now: `end('success', msg)` or `end('error', msg)` (also
        'ENDED_SUCCESS' / 'ENDED_ERROR')."""
        ended = {"success": "ENDED_SUCCESS", "ended_success": "ENDED_SUCCESS",
                 "error": "ENDED_ERROR", "ended_error": "ENDED_ERROR"}.get(str(status).lower())
        if ended is None:
            raise FlowApiError(f"end() takes the status 'success' or 'error', not {status!r}")
        raise ExecutionEnded(ended, message)


def _split_fields(fields: tuple[Any, ...], default: Any) -> tuple[tuple[str, ...], Any]:
    """The field names of a `get`/`load` call, and its default: the older `get('f',
    default)` passes the default second (anything that is no field name)."""
    if not fields:
        raise FlowApiError("name at least one execution field")
    if len(fields) == 2 and not (isinstance(fields[1], str) and fields[1] in _FIELDS):
        return (fields[0],), fields[1]
    for field in fields:
        if not isinstance(field, str):
            raise FlowApiError(f"field names are strings, not {type(field).__name__}")
    return tuple(fields), default


def _wait_mode(wait: Any) -> tuple[bool, bool]:
    """(waits, raises unless it succeeded) of a `wait=` argument: a bool, or a ReturnWhen
    (ALL_ENDED and FIRST_ENDED wait without raising)."""
    if isinstance(wait, bool):
        return wait, wait
    try:
        mode = ReturnWhen(wait)
    except ValueError:
        raise FlowApiError(
            f"wait must be True, False or one of system.return_when, not {wait!r}") from None
    return True, mode in (ReturnWhen.ALL_SUCCEEDED, ReturnWhen.FIRST_SUCCEEDED)


def _key_list(value: Any, option: str) -> list[str] | None:
    if value is None or value is False:
        return None
    if value is True:
        return ["*"]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(k, str) for k in value):
        return list(value)
    raise FlowApiError(f"{option} must be a list of input/output names, one name, or True")


def _start_options(options: dict[str, Any]) -> dict[str, Any]:
    """The call options that change how the child starts, checked, as the port takes them."""
    target: dict[str, Any] = {}
    priority = options.get("priority")
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int | float | str):
            raise FlowApiError("priority must be 'high', 'normal', 'low' or a number")
        if isinstance(priority, str):
            priority = priority.lower()
            if priority not in _PRIORITIES:
                raise FlowApiError(f"priority must be one of {', '.join(_PRIORITIES)}, not {priority!r}")
        else:
            priority = "high" if priority > 0 else "low" if priority < 0 else "normal"
        target["priority"] = priority
    minutes = options.get("max_runtime_minutes")
    if minutes is not None:
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
            raise FlowApiError("max_runtime_minutes must be a positive number")
        target["timeout"] = float(minutes) * 60
    for option in ("protect_inputs", "protect_outputs"):
        keys = _key_list(options.get(option), option)
        if keys:
            target[option] = keys
    return target


def _wait_for(
    waiter_id: int | None, executions: list[Execution], return_when: ReturnWhen | str,
    timeout: float | None,
) -> list[Execution]:
    mode = ReturnWhen(return_when)
    if not executions:
        return []
    records = _port.get().wait(waiter_id, [e.id for e in executions], mode.value, timeout)
    by_id = {r["id"]: r for r in records}
    for execution in executions:
        execution._record = by_id.get(execution.id, execution._record)
    ended = [e for e in executions if e._record.get("status") in _ENDED]
    succeeded = [e for e in ended if e._record.get("status") == "ENDED_SUCCESS"]
    failed = [e for e in ended if e._record.get("status") != "ENDED_SUCCESS"]
    done = {
        ReturnWhen.ALL_ENDED: len(ended) == len(executions),
        ReturnWhen.ALL_SUCCEEDED: len(succeeded) == len(executions) or bool(failed),
        ReturnWhen.FIRST_ENDED: bool(ended),
        ReturnWhen.FIRST_SUCCEEDED: bool(succeeded) or len(ended) == len(executions),
    }[mode]
    if not done:
        raise DependencyTimeoutError(f"waited {timeout} s; {len(ended)} of {len(executions)} ended")
    if mode is ReturnWhen.ALL_SUCCEEDED and failed:
        first = failed[0]
        raise DependencyFailedError(
            f"{len(failed)} of {len(executions)} executions did not succeed; first: "
            f"{first._record.get('name', '')!r} ({first.id}) ended "
            f"{first._record.get('status')}: {first._record.get('message', '')}",
            failed,
        )
    if mode is ReturnWhen.FIRST_SUCCEEDED and not succeeded:
        raise DependencyFailedError("none of the executions succeeded", failed)
    return executions


class _Record:
    """A record reached through the port, read with `.get(field)`."""

    def __init__(self, record: dict[str, Any] | None) -> None:
        self._record = record

    def exists(self) -> bool:
        return self._record is not None

    def get(self, field: str, default: Any = None) -> Any:
        if self._record is None:
            raise ResourceNotFoundError(f"{type(self).__name__.lower()} does not exist")
        return self._record.get(field, default)


class Flow(_Record):
    """A stored flow (`system.flow(name)`): `.exists()`, `.get('name' | 'script' | 'id')`."""


class Connection(_Record):
    """A stored connection's non-secret fields (`system.connection(name)`)."""


class User(_Record):
    """The user an execution runs for: `.get('name')`."""


class Setting:
    """A named JSON value shared by flows (`system.setting(name)`), which doubles as a lock."""

    def __init__(self, name: str, execution_id: int | None = None) -> None:
        self.name = name
        self._execution_id = execution_id  # who holds the lock it acquires

    def exists(self) -> bool:
        return bool(_port.get().setting("exists", self.name))

    def get(self, field: str = "value", default: Any = None) -> Any:
        """`get('value')` returns the stored value (default if the setting does not exist)."""
        if field == "name":
            return self.name
        if field != "value":
            raise FlowApiError("a setting has the fields 'name' and 'value'")
        found, value = _port.get().setting("get", self.name)
        return value if found else default

    def save(self, value: Any = None) -> Setting:
        """Create or overwrite the setting with any JSON value."""
        _port.get().setting("save", self.name, value)
        return self

    def delete(self) -> None:
        _port.get().setting("delete", self.name)

    def list_append(self, value: Any) -> Setting:
        """Append `value` to the setting's list in one atomic step (no update is lost to a
        concurrent one); a missing setting (or null value) starts as the list `[value]`."""
        _port.get().setting("list_append", self.name, value)
        return self

    def acquire(self, timeout: float | None = None) -> Setting:
        """Take the setting as a lock, held by this execution until `release()` or until
        it ends, however it ends. Waits while another execution holds it: without end
        (`timeout=None`, a cancel still stops the wait) or up to `timeout` seconds, then
        raises LockTimeoutError. Acquiring a lock this execution holds returns at once."""
        _port.get().setting_lock(self._holder(), "acquire", self.name, timeout)
        return self

    def release(self) -> Setting:
        """Release the lock this execution holds (FlowApiError if it does not hold it)."""
        _port.get().setting_lock(self._holder(), "release", self.name)
        return self

    def __enter__(self) -> Setting:
        return self.acquire()

    def __exit__(self, *_: Any) -> None:
        self.release()

    def _holder(self) -> int:
        if self._execution_id is None:
            raise FlowApiError("a lock is taken through system.setting(name), in an execution")
        return self._execution_id


class Message:
    """A message form for users: `.get('id' | 'status' | 'response')`, `.wait()`."""

    def __init__(self, record: dict[str, Any], waiter_id: int | None = None) -> None:
        self._record = record
        self._waiter_id = waiter_id
        self.id = record["id"]

    def get(self, field: str, default: Any = None) -> Any:
        if field in ("status", "response"):
            self._record = _port.get().message("read", self._waiter_id, id=self.id)
        return self._record.get(field, default)

    def wait(self, timeout: float | None = None) -> Message:
        """Block until the form is answered; returns this Message."""
        self._record = _port.get().message("wait", self._waiter_id, id=self.id, timeout=timeout)
        return self


class System:
    """`system` in a handler: settings, flows, connections, messages, other executions."""

    return_when = ReturnWhen

    def __init__(self, execution_id: int) -> None:
        self._execution_id = execution_id

    def setting(self, name: str) -> Setting:
        return Setting(name, self._execution_id)

    def save_schedule(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create a schedule from `fields` (name, flow, and one of cron, interval_seconds or
        at; timezone, mode, input_value, start_at, end_at, overlap, enabled as the REST API
        takes them), validated like the API; returns it as the API shows it. Raises
        ValueError naming the field at fault ("cron: ...")."""
        return _port.get().save_schedule(dict(fields))

    def flow(self, name_or_id: str | int, by: str = "name") -> Flow:
        return Flow(_port.get().flow_record(name_or_id, by))

    def connection(self, name: str) -> Connection:
        return Connection(_port.get().connection_record(name))

    def message(
        self, message_id: int | None = None, *, subject: str | None = None,
        body: dict[str, Any] | None = None, message: str | None = None,
        request: str | None = None,
    ) -> Message:
        """`system.message(id)` opens an existing message; `system.message(subject=...,
        body=...)` creates a form without waiting."""
        if message_id is not None:
            record = _port.get().message("read", self._execution_id, id=message_id)
        else:
            record = _port.get().message(
                "create", self._execution_id, subject=subject or "", text=message, body=body,
                request=request,
            )
        return Message(record, self._execution_id)

    def executions(self, **filters: Any) -> list[Execution]:
        """Executions matching field filters, e.g. `system.executions(status='RUNNING')`."""
        return [Execution(r, caller=self._execution_id) for r in _port.get().executions(filters)]

    def execution(self, execution_id: int) -> Execution:
        return Execution(_port.get().read(execution_id), caller=self._execution_id)

    def get_own_user(self) -> User:
        return User(_port.get().user(self._execution_id))

    def user(self, name: str) -> User:
        """A user by name: `.exists()`, `.get('name' | 'id' | 'is_active')`."""
        return User(_port.get().user_record(str(name)))

    def get_env_name(self) -> str:
        """The name of this installation (AUTOMATION_ENV_NAME; 'default' when unset)."""
        return _port.get().env_name()
