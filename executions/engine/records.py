"""Executions as dicts: the one module that turns an execution row into JSON.

Two views of the same fields, because two published contracts read them: `record` is what
flow_api gives a flow (Cloudomation's field names: `parent_execution_id`, ...), and
`execution_json` is what the REST API, webhooks, the admin and the shell show (`parent`,
`root`, the flow's name, and why a waiting one waits).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from connectors.base import MASK, Scrubber, secret_strings

from ..models import Execution
from . import workers_status


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _related_name(execution: Execution, field: str) -> tuple[bool, str | None]:
    """(known, name) of the execution's flow or user without a query: known is False when
    the related row is not loaded (flow_api then re-reads the execution to get it)."""
    if getattr(execution, f"{field}_id") is None:
        return True, None
    descriptor = Execution._meta.get_field(field)
    if not descriptor.is_cached(execution):  # type: ignore[union-attr]
        return False, None
    related = getattr(execution, field)
    if related is None:
        return True, None
    return True, related.name if field == "flow" else related.get_username()


def _modified_at(execution: Execution) -> Any:
    stamps = [t for t in (execution.created_at, execution.started_at, execution.heartbeat_at,
                          execution.ended_at) if t]
    return max(stamps) if stamps else None


def record(execution: Execution) -> dict[str, Any]:
    """The flow_api view of an execution row (Cloudomation's field names).

    No query of its own: `flow_name` and `user_name` are in it when the flow and user rows
    are loaded (`EnginePort.read` loads them), else flow_api reads them when asked."""
    data = {
        "id": execution.pk,
        "name": execution.name,
        "type": execution.type,
        "status": execution.status,
        "state": execution.status,  # the older name flows still read (`load('state')`)
        "mode": execution.mode,
        "message": execution.message,
        "input_value": execution.input_value,
        "output_value": execution.output_value,
        "parent_execution_id": execution.parent_id,
        "root_execution_id": execution.root_id,
        "created_at": _iso(execution.created_at),
        "started_at": _iso(execution.started_at),
        "ended_at": _iso(execution.ended_at),
        "modified_at": _iso(_modified_at(execution)),
        "creation_time": _iso(execution.created_at),  # the older name flows still read
        "flow_id": execution.flow_id,
        "created_by": execution.user_id,
        "connector_type": execution.connector_type or None,
        "is_productive": execution.mode == Execution.Mode.PRODUCTIVE,
        "is_paused": execution.status == Execution.Status.PAUSED,
        "priority": execution.priority,
        "max_runtime_minutes": execution.timeout / 60 if execution.timeout else None,
        "protect_inputs": list(execution.protect_inputs or []),
        "protect_outputs": list(execution.protect_outputs or []),
        # One installation is one client (tenant): system.get_own_client() names it so too.
        "client_name": str(settings.AUTOMATION["ENV_NAME"]),
    }
    for field in ("flow", "user"):
        known, name = _related_name(execution, field)
        if known:
            data[f"{field}_name"] = name
    return data


def _masked(value: Any, keys: list[str] | None) -> Any:
    if not keys or not isinstance(value, dict):
        return value
    return {k: MASK if "*" in keys or k in keys else v for k, v in value.items()}


def shown_inputs(execution: Execution) -> Any:
    """input_value as people see it: the keys its call protected (`protect_inputs`) masked."""
    return _masked(execution.input_value, execution.protect_inputs)


def shown_outputs(execution: Execution) -> Any:
    """output_value as people see it: the keys protected by `protect_outputs` masked."""
    return _masked(execution.output_value, execution.protect_outputs)


def protected_scrubber(execution: Execution) -> Scrubber | None:
    """A scrubber for the protected values of the execution (for its log and message), or
    None when it protects nothing."""
    protect_in, protect_out = execution.protect_inputs or [], execution.protect_outputs or []
    if not protect_in and not protect_out:
        return None
    hidden: list[str] = []
    for value, keys in ((execution.input_value, protect_in), (execution.output_value, protect_out)):
        for key, item in (value or {}).items() if isinstance(value, dict) else ():
            if "*" in keys or key in keys:
                hidden.extend(secret_strings(item))
    return Scrubber(hidden)


def shown_message(execution: Execution) -> str:
    """The status message as people see it: protected input and output values masked."""
    scrubber = protected_scrubber(execution) if execution.message else None
    return scrubber.text(execution.message) if scrubber is not None else execution.message


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
    """Execution JSON with the flow_api field names; the inputs and outputs its call
    protected (`protect_inputs` / `protect_outputs`) are masked, in its message too."""

    data = {
        "id": execution.pk,
        "type": execution.type,
        "name": execution.name,
        "status": execution.status,
        "mode": execution.mode,
        "input_value": shown_inputs(execution),
        "output_value": shown_outputs(execution),
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
        "attempt": execution.attempt,
        "previous_attempts": [
            {k: a.get(k) for k in ("attempt", "started_at", "ended_at", "status_message")}
            for a in execution.previous_attempts or []
        ],
        # Asked to stop (a cancel, a timeout) while its code ran: it ends so once stopped.
        "stop_status": execution.stop_status or None,
        "stop_requested_at": _iso(execution.stop_requested_at),
    }
    data["message"] = shown_message(execution)
    if execution.status in (Execution.Status.PENDING, Execution.Status.WAITING):
        # Read-only: why it has not started ("no worker serves queue X", a full limit), or
        # what it waits for (a message form's answer; parked or held by a worker).
        data["waiting_reason"] = waiting_reason(execution)
    return data
