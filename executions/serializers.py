"""The JSON shape of executions, shared by the API, webhooks and the shell."""

from __future__ import annotations

from typing import Any

from .models import Execution


def execution_json(execution: Execution) -> dict[str, Any]:
    """Execution JSON with the flow_api field names."""

    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

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
        "created_at": iso(execution.created_at),
        "started_at": iso(execution.started_at),
        "ended_at": iso(execution.ended_at),
    }
    if execution.status in (Execution.Status.PENDING, Execution.Status.WAITING):
        # Read-only: why it has not started ("no worker serves queue X", a full limit), or
        # what it waits for (a message form's answer; parked or held by a worker).
        data["waiting_reason"] = execution.waiting_reason
    return data
