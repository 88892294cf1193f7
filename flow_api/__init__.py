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

import base64
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
    EngineException,
    ExecutionCancel,
    ExecutionEnded,
    ExecutionError,
    ExecutionSuccess,
    ExecutionTerminated,
    ExtraInputError,
    FlowApiError,
    InternalError,
    InvalidInputError,
    LifecycleSignal,
    LimitExceededError,
    LockTimeoutError,
    MessageResponseTimeoutError,
    MissingInputError,
    PermissionDenied,
    ResourceNotFoundError,
    SchemaValidationError,
    TimeoutExceededError,
)

__all__ = [
    "Client",
    "CloudomationException",
    "Connection",
    "DependencyFailedError",
    "DependencyTimeoutError",
    "EngineException",
    "Execution",
    "ExecutionCancel",
    "ExecutionEnded",
    "ExecutionError",
    "ExecutionSuccess",
    "ExecutionTerminated",
    "ExtraInputError",
    "File",
    "Flow",
    "FlowApiError",
    "InternalError",
    "InvalidInputError",
    "LifecycleSignal",
    "LimitExceededError",
    "LockTimeoutError",
    "Message",
    "MessageResponseTimeoutError",
    "MissingInputError",
    "PermissionDenied",
    "ResourceNotFoundError",
    "ReturnWhen",
    "SchemaValidationError",
    "Setting",
    "System",
    "TimeoutExceededError",
    "User",
    "Webhook",
]

_FIELDS = (
    "id", "name", "type", "status", "state", "mode", "message", "input_value", "output_value",
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
# Cloudomation's INPUT task: its inputs, and the child that asks (a SCRIPT execution).
_INPUT_INPUTS = ("request", "subject", "type", "timeout")
_INPUT_SCRIPT = """\
def handler(system, this):
    asked = this.get('input_value')
    form = {'properties': {'response': {'label': asked['request'], 'element': 'string'}},
            'required': ['response']}
    answer = this.message(asked.get('subject') or asked['request'], body=form,
                          timeout=asked.get('timeout'))
    this.save(output_value={'response': answer['response']})
"""
_ENDED = ("ENDED_SUCCESS", "ENDED_ERROR", "ENDED_CANCELLED")
_NOT_GIVEN: Any = object()  # `system.setting(name)` reads; with `value=` it also saves


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
        'message')`. Fields: id, name, type, status (also as `state`, its older name), mode,
        message, input_value, output_value, parent_execution_id, root_execution_id,
        created_at, started_at, ended_at, modified_at, creation_time, flow_id, flow_name,
        user_name, created_by, connector_type, is_productive, is_paused, priority,
        max_runtime_minutes, protect_inputs, protect_outputs, client_name (the
        installation's name: one installation is one client, see `System.get_own_client`).
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
        if not connection_name and str(connector_type).upper() == "INPUT":
            return self._input(inputs, kwargs, name, run, wait)
        target = {"connection": connection_name, "connector_type": connector_type,
                  "retry_policy": retry_policy}
        return self._child("CONNECTION", target, inputs, kwargs, name, run, wait)

    def _input(self, inputs: dict[str, Any] | None, kwargs: dict[str, Any], name: str | None,
               run: bool, wait: bool | ReturnWhen | str) -> Execution:
        """Cloudomation's INPUT task: a child that asks a person `request` through a message
        form and ends with the answer in `output_value['response']`."""
        asked = {**(inputs or {}), **{k: v for k, v in kwargs.items() if k not in _OPTIONS}}
        unknown = sorted(set(asked) - set(_INPUT_INPUTS))
        if unknown:
            raise ExtraInputError(
                f"INPUT: unknown input {unknown[0]!r}; known: {', '.join(_INPUT_INPUTS)}")
        if not isinstance(asked.get("request"), str) or not asked["request"].strip():
            raise MissingInputError("INPUT: request= (the question, a text) is required")
        if asked.get("type", "string") != "string":
            # The answer is the child's output, stored in clear: a password is asked with
            # this.message(body={... 'element': 'password'}), whose answer is not.
            raise InvalidInputError(
                f"INPUT: type {asked['type']!r} is not available (only 'string'); ask for a "
                "password with this.message(..., body={'properties': {key: {'element': "
                "'password'}}})")
        options = {k: v for k, v in kwargs.items() if k in _OPTIONS}
        return self._child("SCRIPT", {"script": _INPUT_SCRIPT, "retry_policy": None}, asked,
                           options, name or "INPUT", run, wait)

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
        """Start a child created with `run=False` and return at once (the engine starts
        the children a flow sends this way in batches, before it serves the flow's next
        call); on an execution last read PAUSED (`pause()`, `load()`), resume it."""
        if self._record.get("status") == "PAUSED":
            self._record = _port.get().resume(self.id)
            return self
        _port.get().start_children(self._caller, [self.id])
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
        """Cancel this execution and all its descendants. For another execution (a
        child), this returns once its code has stopped and it reads ENDED_CANCELLED (a
        flow that ignores its cancel is killed after AUTOMATION_CANCEL_GRACE_SECONDS; the
        wait is at most that and 2 s more); `this.cancel()` stops this flow at once."""
        self._record = _port.get().cancel(self.id)
        return self

    def pause(self) -> Execution:
        """Pause this execution (`this.pause()`) or a child: it is PAUSED and holds at its
        next flow_api call (`this.pause()` holds at once) until it is resumed, by
        `run_async()` on it or `POST /api/executions/<id>/resume/`."""
        self._record = _port.get().pause(self.id)
        return self

    def archive(self) -> Execution:
        """Accepted for Cloudomation's flows: there is no archive here (ended executions are
        kept for AUTOMATION_RETENTION_DAYS and then pruned); this changes nothing."""
        return self

    def webhook_html_response(self, html: str) -> Execution:
        """Answer the synchronous webhook call that started this execution with `html`
        (Content-Type text/html), sandboxed; it is the output `webhook_response`."""
        if not isinstance(html, str):
            raise FlowApiError("webhook_html_response() takes the HTML as a str")
        return self.save(output_value={"webhook_response": {"html": html}})

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
        message: str | None = None, *, retention_time: Any = None, expires: Any = None,
    ) -> Execution:
        """Store outputs (merged into output_value), rename, or set the status message.

        `retention_time` and `expires` (Cloudomation's) are accepted with no effect: ended
        executions are pruned for the whole installation (AUTOMATION_RETENTION_DAYS)."""
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
        self, subject: str, message: str | None = None, *, body: dict[str, Any] | str | None = None,
        request: str | None = None, wait: bool = True, timeout: float | None = None,
        message_type: str = "INFO", type: str | None = None,
    ) -> Any:
        """Ask a user through a message form (see `System.message`).

        With `wait` (default) the execution is WAITING until the form is answered (a
        message without a form: until it is acknowledged), and the response (a dict) is
        returned; else the `Message` is returned at once.
        """
        text, body = _text_and_form(message, body)
        record = _port.get().message(
            "create", self.id, subject=subject, text=text, body=body, request=request,
            message_type=type or message_type,
        )
        msg = Message(record, self.id)
        if not wait:
            return msg
        return msg.wait(timeout=timeout).get("response")

    def success(self, message: str | None = None) -> ExecutionEnded:
        """End this execution ENDED_SUCCESS now (use as `return this.success('done')`)."""
        raise ExecutionSuccess("ENDED_SUCCESS", message)

    def error(self, message: str | None = None) -> ExecutionEnded:
        """End this execution ENDED_ERROR now with `message`."""
        raise ExecutionError("ENDED_ERROR", message)

    def end(self, status: str, message: str | None = None) -> ExecutionEnded:
        """End this execution now: `end('success', msg)` or `end('error', msg)` (also
        'ENDED_SUCCESS' / 'ENDED_ERROR')."""
        ended = {"success": "ENDED_SUCCESS", "ended_success": "ENDED_SUCCESS",
                 "error": "ENDED_ERROR", "ended_error": "ENDED_ERROR"}.get(str(status).lower())
        if ended is None:
            raise FlowApiError(f"end() takes the status 'success' or 'error', not {status!r}")
        raise (ExecutionSuccess if ended == "ENDED_SUCCESS" else ExecutionError)(ended, message)


def _text_and_form(
    text: str | None, body: dict[str, Any] | str | None
) -> tuple[str | None, dict[str, Any] | None]:
    """A message's text and form: Cloudomation's `body` is a form, or the text of a
    message without one."""
    if isinstance(body, str):
        return (f"{text}\n\n{body}" if text else body), None
    return text, body


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

    def __init__(self, record: dict[str, Any] | None, name: Any = None,
                 execution_id: int | None = None) -> None:
        self._record = record
        self._name = record["name"] if record else name
        self._execution_id = execution_id  # whose user's permissions a save needs

    def exists(self) -> bool:
        return self._record is not None

    def get(self, field: str, default: Any = None) -> Any:
        if self._record is None:
            raise ResourceNotFoundError(f"{type(self).__name__.lower()} {self._name!r} does not exist")
        return self._record.get(field, default)

    def _save(self, kind: str, fields: dict[str, Any]) -> None:
        if self._execution_id is None:
            raise FlowApiError(f"a {kind} is saved through system.{kind}(name), in an execution")
        self._record = _port.get().save_record(self._execution_id, kind, str(self._name), fields)


class Flow(_Record):
    """A stored flow (`system.flow(name)`): `.exists()`, `.get('name' | 'script' | 'id' |
    'description' | 'is_enabled' | 'revision' | ...)`, `.save(script=...)`."""

    def save(self, **fields: Any) -> Flow:
        """Create or change the flow: `script`, `description`, `is_enabled`, `timeout`,
        `queue`. Needs the user's executions.add_flow / change_flow permission; records a
        revision, as a save in the admin or the API does."""
        self._save("flow", fields)
        return self


class Connection(_Record):
    """A stored connection's non-secret fields (`system.connection(name)`), `.save(...)`."""

    def save(self, **fields: Any) -> Connection:
        """Create or change the connection: `connection_type` (or `connector_type`),
        `value`, `description` (needs connectors.add_connection / change_connection)."""
        self._save("connection", fields)
        return self


class Webhook(_Record):
    """A webhook (`system.webhooks()`): `.get('name' | 'is_enabled' | 'flow_name' | ...)`,
    `.save(is_enabled=...)` (needs executions.change_webhook)."""

    def save(self, **fields: Any) -> Webhook:
        self._save("webhook", fields)
        return self


class User(_Record):
    """The user an execution runs for: `.get('name')`."""


class Client(_Record):
    """This installation as Cloudomation's client (tenant) record, read-only
    (`system.get_own_client()`): `.get('name')` / `.load('name')` is its name, the one
    `system.get_env_name()` gives. One installation here is one client."""

    def load(self, field: str, default: Any = None) -> Any:
        """Like `get`, read again."""
        self._record = _client_record()
        return self.get(field, default)


def _client_record() -> dict[str, Any]:
    return {"name": _port.get().env_name()}


class File:
    """A file shared by flows and users (`system.file(name)`), stored in the database.

    `get('content')` / `get_text_content()` read it as text (UTF-8), `get_bytes_content()`
    as bytes, `get_base64_content()` as base64 text; `save(content=...)` (text or bytes),
    `save_text_content`, `save_bytes_content`, `save_base64_content` write it whole."""

    def __init__(self, name: str, execution_id: int, record: dict[str, Any] | None = None) -> None:
        self.name = name
        self._execution_id = execution_id
        self._record = record  # without content until read

    def __repr__(self) -> str:
        return f"<File {self.name!r}>"

    def exists(self) -> bool:
        return bool(_port.get().file(self._execution_id, "exists", self.name))

    def _read(self) -> dict[str, Any]:
        found = _port.get().file(self._execution_id, "get", self.name)
        if found is None:
            raise ResourceNotFoundError(f"file {self.name!r} does not exist")
        self._record = found
        return found

    def get(self, field: str = "content", default: Any = None) -> Any:
        """A field: `content` (text), `name`, `size`, `content_type`, `created_at`,
        `modified_at`, `user_name`, `id`. Raises ResourceNotFoundError if it does not exist."""
        if field == "name":
            return self.name
        record = self._record if self._record and field != "content" else self._read()
        if field == "content":
            return self.get_text_content()
        if field not in record or field == "content_base64":
            raise FlowApiError(f"a file has no field {field!r}")
        value = record.get(field)
        return default if value is None else value

    def load(self, field: str = "content", default: Any = None) -> Any:
        """Like `get`, re-read from the database."""
        self._record = None
        return self.get(field, default)

    def get_bytes_content(self) -> bytes:
        record = self._read()
        return base64.b64decode(record["content_base64"])

    def get_text_content(self, encoding: str = "utf-8") -> str:
        return self.get_bytes_content().decode(encoding)

    def get_base64_content(self) -> str:
        return str(self._read()["content_base64"])

    def save(self, content: str | bytes | None = None, content_type: str | None = None) -> File:
        """Create or overwrite the file with `content` (text is stored as UTF-8)."""
        if content is None:
            content = b""
        if isinstance(content, str):
            return self.save_text_content(content, content_type=content_type)
        if isinstance(content, bytes | bytearray):
            return self.save_bytes_content(bytes(content), content_type=content_type)
        raise FlowApiError(f"content must be text or bytes, not {type(content).__name__}")

    def save_text_content(self, text: str, content_type: str | None = None) -> File:
        if not isinstance(text, str):
            raise FlowApiError(f"save_text_content takes text, not {type(text).__name__}")
        return self.save_bytes_content(text.encode("utf-8"), content_type=content_type)

    def save_bytes_content(self, data: bytes, content_type: str | None = None) -> File:
        if not isinstance(data, bytes | bytearray):
            raise FlowApiError(f"save_bytes_content takes bytes, not {type(data).__name__}")
        return self.save_base64_content(base64.b64encode(bytes(data)).decode("ascii"),
                                        content_type=content_type)

    def save_base64_content(self, text: str, content_type: str | None = None) -> File:
        if not isinstance(text, str):
            raise FlowApiError(f"save_base64_content takes base64 text, not {type(text).__name__}")
        self._record = _port.get().file(
            self._execution_id, "save", self.name, content_base64=text, content_type=content_type)
        return self

    def delete(self) -> None:
        _port.get().file(self._execution_id, "delete", self.name)
        self._record = None


class Setting:
    """A named JSON value shared by flows (`system.setting(name)`), which doubles as a lock."""

    def __init__(self, name: str, execution_id: int | None = None) -> None:
        self.name = name
        self._execution_id = execution_id  # who holds the lock it acquires

    def exists(self) -> bool:
        return bool(_port.get().setting("exists", self.name))

    def get(self, field: str = "value", default: Any = None) -> Any:
        """`get('value')` returns the stored value (default if the setting does not exist);
        `get('description')` its description."""
        if field == "name":
            return self.name
        if field == "description":
            found = _port.get().setting("record", self.name)
            return default if found is None else found["description"]
        if field != "value":
            raise FlowApiError("a setting has the fields 'name', 'value' and 'description'")
        found, value = _port.get().setting("get", self.name)
        return value if found else default

    def load(self, field: str = "value", default: Any = None) -> Any:
        """Like `get` (a setting is always read from the database)."""
        return self.get(field, default)

    def save(self, value: Any = None, description: str | None = None) -> Setting:
        """Create or overwrite the setting with any JSON value (and its description).
        Needs the user's executions.add_setting / change_setting permission."""
        if description is not None and not isinstance(description, str):
            raise FlowApiError("description must be text")
        _port.get().setting("save", self.name, value, description)
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
    """A message form for users: `.get('id' | 'status' | 'response' | 'message_type' |
    'subject')`, `.wait()`."""

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

    def setting(self, name: str, value: Any = _NOT_GIVEN, description: str | None = None) -> Setting:
        """The setting `name`; `system.setting(name=..., value=...)` (the older form) also
        saves it."""
        setting = Setting(name, self._execution_id)
        if value is not _NOT_GIVEN:
            setting.save(value, description=description)
        return setting

    def settings(self, filter: Any = None) -> list[Setting]:
        """The settings matching `filter` ({'field', 'op', 'value'}; see `executions`)."""
        found = _port.get().records(self._execution_id, "setting", filter)
        return [Setting(r["name"], self._execution_id) for r in found]

    def file(self, name: str) -> File:
        """The file `name` (it need not exist yet: `.exists()`, `.save(...)`)."""
        if not isinstance(name, str) or not name:
            raise FlowApiError("a file name is a non-empty string")
        return File(name, self._execution_id)

    def files(self, dir: str | None = None, glob: str | None = None,
              filter: Any = None) -> list[File]:
        """The files below folder `dir`, whose names match `glob` (`*` within a folder,
        `**/` any folders) and `filter`."""
        found = _port.get().records(self._execution_id, "file", filter,
                                    {"dir": dir, "glob": glob})
        return [File(r["name"], self._execution_id, r) for r in found]

    def flows(self, filter: Any = None) -> list[Flow]:
        found = _port.get().records(self._execution_id, "flow", filter)
        return [Flow(r, execution_id=self._execution_id) for r in found]

    def webhooks(self, filter: Any = None) -> list[Webhook]:
        found = _port.get().records(self._execution_id, "webhook", filter)
        return [Webhook(r, execution_id=self._execution_id) for r in found]

    def webhook(self, name: str) -> Webhook:
        return Webhook(_port.get().record_of("webhook", str(name)), str(name), self._execution_id)

    def save_schedule(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create a schedule from `fields` (name, flow, and one of cron, interval_seconds or
        at; timezone, mode, input_value, start_at, end_at, overlap, enabled as the REST API
        takes them), validated like the API; returns it as the API shows it. Raises
        ValueError naming the field at fault ("cron: ...")."""
        return _port.get().save_schedule(self._execution_id, dict(fields))

    def flow(self, name_or_id: str | int, by: str = "name") -> Flow:
        return Flow(_port.get().flow_record(name_or_id, by), name_or_id, self._execution_id)

    def connection(self, name: str) -> Connection:
        return Connection(_port.get().connection_record(name), name, self._execution_id)

    connector = connection  # Cloudomation Engine 7+'s name of the same record

    def message(
        self, subject: str | int | None = None, body: dict[str, Any] | str | None = None,
        message_type: str | None = None, *, message: str | None = None,
        request: str | None = None, type: str | None = None, message_id: int | None = None,
    ) -> Message:
        """A message for users, without waiting: `system.message(subject, body,
        message_type='INFO')` (also `subject=`, `body=` a form or a text, `message=` text,
        `request=` a one-question form). Types: INFO (default), WARN, ERROR, POPUP; the
        older `type='popup'` too. `.wait()` waits for its answer; `system.message(id)`
        opens an existing message (also `message_id=id`)."""
        if message_id is None and isinstance(subject, int) and not isinstance(subject, bool):
            message_id, subject = subject, None
        if message_id is not None:
            record = _port.get().message("read", self._execution_id, id=message_id)
            return Message(record, self._execution_id)
        text, form = _text_and_form(message, body)
        record = _port.get().message(
            "create", self._execution_id, subject=str(subject or ""), text=text, body=form,
            request=request, message_type=message_type or type or "INFO",
        )
        return Message(record, self._execution_id)

    def executions(self, filter: Any = None, **filters: Any) -> list[Execution]:
        """Executions matching a filter (at most 1000): Cloudomation's
        `filter={'field': 'status', 'op': 'eq', 'value': 'RUNNING'}` (ops eq, ne, lt, le,
        gt, ge, in, like, ilike; a list of them, or {'and': [...]} / {'or': [...]}), or
        the older field keywords `system.executions(status='RUNNING')`."""
        if filter is not None:
            found = _port.get().records(self._execution_id, "execution", filter)
        else:
            found = _port.get().executions(filters)
        return [Execution(r, caller=self._execution_id) for r in found]

    def execution(self, execution_id: int) -> Execution:
        return Execution(_port.get().read(execution_id), caller=self._execution_id)

    def get_own_user(self) -> User:
        return User(_port.get().user(self._execution_id))

    def user(self, name: str) -> User:
        """A user by name: `.exists()`, `.get('name' | 'id' | 'is_active')`."""
        return User(_port.get().user_record(str(name)))

    def get_own_client(self) -> Client:
        """This installation as the client record (read-only): `.get('name')` is
        `get_env_name()`; there are no other clients (tenants) here."""
        return Client(_client_record())

    def get_env_name(self) -> str:
        """The name of this installation (AUTOMATION_ENV_NAME; 'default' when unset)."""
        return _port.get().env_name()
