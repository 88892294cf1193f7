"""Executions as dicts: the one module that turns an execution row into JSON.

Two views of the same fields, because two published contracts read them: `record` is what
flow_api gives a flow (Cloudomation's field names: `parent_execution_id`, ...), and
`execution_json` is what the REST API, webhooks, the admin and the shell show (`parent`,
`root`, the flow's name, and why a waiting one waits).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from flow_api.exceptions import FlowApiError

from ..models import Execution
from . import workers_status


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def record(execution: Execution) -> dict[str, Any]:
    """The flow_api view of an execution row."""
    return {
        "id": execution.pk,
        "name": execution.name,
        "type": execution.type,
        "status": execution.status,
        "mode": execution.mode,
        "message": execution.message,
        "input_value": execution.input_value,
        "output_value": execution.output_value,
        "parent_execution_id": execution.parent_id,
        "root_execution_id": execution.root_id,
        "created_at": _iso(execution.created_at),
        "started_at": _iso(execution.started_at),
        "ended_at": _iso(execution.ended_at),
    }


_ENCODER = DjangoJSONEncoder()  # dates, times, decimals, UUIDs become strings, as before
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def json_safe(value: Any, name: str = "value") -> Any:
    """`value` as PostgreSQL's jsonb stores it, or `FlowApiError` naming what cannot be
    stored and where (`output_value['x'] is a set`): no set, bytes or other object, no NaN
    or infinity, no NUL character or lone surrogate in a string or key."""
    try:
        return _json_value(value, name, set())
    except RecursionError:
        raise FlowApiError(f"{name} is nested too deeply to be stored as JSON") from None


def _json_value(value: Any, path: str, seen: set[int]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FlowApiError(f"{path} is {value!r}, which JSON cannot hold")
        return float(value)
    if isinstance(value, str):
        return _json_str(value, path)
    if isinstance(value, dict | list | tuple):
        if id(value) in seen:
            raise FlowApiError(f"{path} contains itself, which JSON cannot hold")
        seen.add(id(value))
        try:
            if isinstance(value, dict):
                return {
                    _json_key(k, path): _json_value(v, f"{path}[{k!r}]", seen)
                    for k, v in value.items()
                }
            return [_json_value(v, f"{path}[{i}]", seen) for i, v in enumerate(value)]
        finally:
            seen.discard(id(value))
    try:
        converted = _ENCODER.default(value)
    except TypeError:
        raise FlowApiError(f"{path} is {a_type(value)}, which JSON cannot hold") from None
    return _json_value(converted, path, seen)


def a_type(value: Any) -> str:
    """"a set", "an int": the type of `value` as a message names it."""
    kind = type(value).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _json_key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return _json_str(key, f"a key of {path}")
    if key is None or isinstance(key, bool | int | float):  # json.dumps writes these as text
        return json.dumps(key)
    raise FlowApiError(f"{path} has a key of type {type(key).__name__}; JSON keys are strings")


def _json_str(text: str, path: str) -> str:
    if "\x00" in text:
        raise FlowApiError(f"{path} contains a NUL character (\\x00), which JSON cannot hold")
    found = _SURROGATE.search(text)
    if found is not None:
        raise FlowApiError(
            f"{path} contains a lone surrogate ({found.group()!a} at position {found.start()}), "
            "which JSON cannot hold"
        )
    return str.__str__(text)  # a str subclass (an enum's value) as the plain text


def output_too_large(output_value: dict[str, Any]) -> str:
    """"" or why `output_value` is refused: its JSON is larger than a request body may be
    (AUTOMATION_MAX_BODY_BYTES), the cap on `input_value` too, so that every execution
    can be read back through the API and the admin."""
    limit = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    size = len(json.dumps(output_value, ensure_ascii=False).encode("utf-8", "replace"))
    if size <= limit:
        return ""
    return (
        f"output_value is {size} bytes as JSON, over the limit of {limit} bytes "
        "(AUTOMATION_MAX_BODY_BYTES, as for input_value)"
    )


def waiting_reason(execution: Execution) -> str:
    """Why a PENDING execution has not started, or what a WAITING one waits for: the row's
    own reason (`Execution.waiting_reason`), and first whether any worker serves its queue."""
    if execution.status == Execution.Status.PENDING and not execution.deferred:
        return workers_status.unserved_reason(execution) or execution.waiting_reason
    return execution.waiting_reason


def execution_json(execution: Execution) -> dict[str, Any]:
    """Execution JSON with the flow_api field names."""

    data = {
        "id": execution.pk,
        "type": execution.type,
        "name": execution.name,
        "status": execution.status,
        "mode": execution.mode,
        "input_value": execution.input_value,
        "output_value": execution.output_value,
        "message": execution.message,
        "parent": execution.parent_id,
        "root": execution.root_id,
        "flow": execution.flow.name if execution.flow_id and execution.flow else None,
        "flow_revision": execution.flow_revision,
        "trigger": execution.trigger,
        "queue": execution.queue,
        "priority": execution.priority,
        "created_at": _iso(execution.created_at),
        "started_at": _iso(execution.started_at),
        "ended_at": _iso(execution.ended_at),
    }
    if execution.status in (Execution.Status.PENDING, Execution.Status.WAITING):
        # Read-only: why it has not started ("no worker serves queue X", a full limit), or
        # what it waits for (a message form's answer; parked or held by a worker).
        data["waiting_reason"] = waiting_reason(execution)
    return data
