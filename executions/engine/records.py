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
        "attempt": execution.attempt,
        "previous_attempts": [
            {k: a.get(k) for k in ("attempt", "started_at", "ended_at", "status_message")}
            for a in execution.previous_attempts or []
        ],
    }
    if execution.status in (Execution.Status.PENDING, Execution.Status.WAITING):
        # Read-only: why it has not started ("no worker serves queue X", a full limit), or
        # what it waits for (a message form's answer; parked or held by a worker).
        data["waiting_reason"] = waiting_reason(execution)
    return data
