"""Message forms: a flow asks, a user answers (API or admin), the waiting flow resumes.

`forms` holds the whole room: the form schema, the validation of an answer, `respond`, and
the flow's side (`port_call`: create, read, wait), which the engine's port reaches once
executions.signals has plugged it in.
"""

from __future__ import annotations

from .forms import (
    ELEMENT_TYPES,
    MessageClosed,
    ResponseError,
    build_form,
    create,
    message_record,
    port_call,
    respond,
    validate_response,
    wait,
)

__all__ = [
    "ELEMENT_TYPES",
    "MessageClosed",
    "ResponseError",
    "build_form",
    "create",
    "message_record",
    "port_call",
    "respond",
    "validate_response",
    "wait",
]
