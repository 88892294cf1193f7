"""Message forms: a flow asks, a user answers (API or admin), the waiting flow resumes.

The flow side (`this.message`, `system.message`, `Message.wait`) reaches `port_call`
through flow_api's port. An answer is validated against the form before it is accepted
(`respond`), then a Redis notice wakes the waiting flow; the row decides, the notice only
saves the safety-poll interval. While it waits, the execution is WAITING, its worker
process keeps sending heartbeats, and a cancel or timeout reaches the wait. A long wait
parks and frees its process (executions.engine.parking); the answer then resumes it.
"""

from __future__ import annotations

import contextlib
import time
import zoneinfo
from datetime import time as time_of_day
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from connectors.base import MASK
from flow_api.exceptions import (
    ExecutionParked,
    ExecutionTerminated,
    FlowApiError,
    MessageResponseTimeoutError,
)

from ..engine import notify, reconciler
from ..engine.guard import guard
from ..engine.transitions import mark_running, mark_waiting
from ..engine.waiting import Wakeup, safety_poll_seconds
from ..models import Execution, Message

# Input elements and the JSON type each answers with; markdown is text to read only. A
# password's answer is kept encrypted for the flow and masked everywhere else.
ELEMENT_TYPES = {
    "string": "string", "number": "number", "toggle": "boolean", "time": "string",
    "submit": "boolean", "markdown": None, "password": "string",
}
MESSAGE_TYPES = ("INFO", "WARN", "ERROR", "POPUP")
_TYPE_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


class ResponseError(ValueError):
    """An answer does not fit its form; `field` names the key at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class MessageClosed(ValueError):
    """The message was answered already or expired."""


def build_form(body: dict[str, Any] | None, request: str | None) -> dict[str, Any]:
    """The form schema of a new message: `body` as given, or the short form of `request`."""
    if request is not None:
        return {
            "type": "object",
            "properties": {
                "string": {"label": str(request), "element": "string", "type": "string", "order": 1}
            },
            "required": ["string"],
        }
    if body is None:
        return {"type": "object", "properties": {}, "required": []}
    if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
        raise FlowApiError("body must be an object with 'properties': {key: {...}}")
    for key, prop in body.get("properties", {}).items():
        if not isinstance(prop, dict):
            raise FlowApiError(f"body.properties.{key} must be an object")
        element = prop.get("element", "string")
        if element not in ELEMENT_TYPES:
            raise FlowApiError(
                f"body.properties.{key}.element {element!r} is not one of "
                f"{', '.join(ELEMENT_TYPES)}"
            )
        if "type" in prop and prop["type"] not in _TYPE_CHECKS:
            raise FlowApiError(f"body.properties.{key}.type {prop['type']!r} is unknown")
    required = body.get("required", [])
    if not isinstance(required, list) or not all(k in body.get("properties", {}) for k in required):
        raise FlowApiError("body.required must list keys of body.properties")
    return {"type": "object", **body}


def validate_response(form: dict[str, Any], response: Any) -> dict[str, Any]:
    """The accepted response (defaults filled in), or ResponseError naming the field."""
    if not isinstance(response, dict):
        raise ResponseError("response", "response must be a JSON object of the form's fields")
    properties: dict[str, Any] = form.get("properties", {}) or {}
    unknown = sorted(set(response) - set(properties))
    if unknown:
        raise ResponseError(unknown[0], f"{unknown[0]!r} is not a field of this form")
    accepted: dict[str, Any] = {}
    for key in sorted(properties, key=lambda k: (properties[k].get("order", 0), k)):
        prop = properties[key]
        element = prop.get("element", "string")
        # Errors name the field as the person answering sees it: by its label.
        name = str(prop.get("label") or key)
        if key not in response or response[key] is None:
            if key in form.get("required", []):
                raise ResponseError(key, f"{name} is required")
            if "default" in prop:
                accepted[key] = prop["default"]
            continue
        value = response[key]
        kind = prop.get("type") or ELEMENT_TYPES.get(element)
        if kind is not None and not _TYPE_CHECKS[kind](value):
            raise ResponseError(key, f"{name} must be of type {kind}")
        if element == "time" or prop.get("format") == "time":
            try:
                time_of_day.fromisoformat(value)
            except ValueError:
                raise ResponseError(key, f"{name} must be a time of day like 14:30") from None
        if kind == "string" and key in form.get("required", []) and not value.strip():
            raise ResponseError(key, f"{name} is required")
        if prop.get("format") == "timezone" and value and not _is_time_zone(value):
            raise ResponseError(
                key, f"{name}: {value!r} is not a time zone (write it like Europe/Vienna or UTC)"
            )
        accepted[key] = value
    return accepted


def _is_time_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def password_keys(form: dict[str, Any] | None) -> list[str]:
    """The keys of a form's password elements."""
    properties = (form or {}).get("properties", {}) or {}
    return [k for k, p in properties.items() if isinstance(p, dict) and p.get("element") == "password"]


def message_record(message: Message, reader: Execution | None = None) -> dict[str, Any]:
    """The flow_api view of a message. Only the execution that asked (`reader`) gets the
    clear answers of password elements; it is marked so that its end erases them."""
    response = message.response
    if (
        reader is not None and message.execution_id == reader.pk and isinstance(response, dict)
        and message.status == Message.Status.ANSWERED and password_keys(message.body)
    ):
        secret = Message.objects.get(pk=message.pk).secret_response  # read fresh, decrypted
        response = {**response, **secret}
        reader.holds_secret_answers = True  # type: ignore[attr-defined]  # read by the runner
    return {
        "id": message.pk,
        "subject": message.subject,
        "message": message.text,
        "message_type": message.message_type,
        "body": message.body,
        "status": message.status,
        "response": response,
        "answered_by": message.answered_by.get_username() if message.answered_by else None,
        "answered_at": message.answered_at.isoformat() if message.answered_at else None,
        "execution": message.execution_id,
    }


def respond(message: Message, response: Any, user: Any = None) -> Message:
    """Validate and store an answer, then wake the flow that waits for it."""
    if message.status != Message.Status.OPEN:
        raise MessageClosed(f"message {message.pk} is {message.status}, it takes no answer")
    accepted = validate_response(message.body or {}, response)
    secret = {k: accepted[k] for k in password_keys(message.body) if k in accepted}
    accepted.update(dict.fromkeys(secret, MASK))
    if not message.answer(accepted, user, secret=secret):
        message.refresh_from_db(fields=["status"])
        raise MessageClosed(f"message {message.pk} is {message.status}, it takes no answer")
    with contextlib.suppress(Exception):  # the waiter's safety poll finds it anyway
        notify.client().publish(notify.message_channel(message.pk), message.status)
    reconciler.answered(message)
    return message


def _get(message_id: Any) -> Message:
    message = Message.objects.select_related("answered_by").filter(pk=message_id).first()
    if message is None:
        raise FlowApiError(f"no message {message_id}")
    return message


def _expired(message: Message, timeout: float | None) -> FlowApiError:
    if message.expires_at is not None and message.expires_at <= timezone.now():
        return MessageResponseTimeoutError(
            f"message {message.pk} was not answered within {float(timeout or 0):g} s"
        )
    return FlowApiError(f"message {message.pk} expired without an answer")


def wait(message_id: int, execution_id: int | None, timeout: float | None) -> Message:
    """Block until the message is answered; the execution is WAITING meanwhile.

    A cancel or the flow's timeout interrupts the wait (the message then expires); the
    wait's own `timeout` expires the message and raises MessageResponseTimeoutError. A wait held
    longer than PARK_AFTER_SECONDS, or when the worker stops, parks (executions.parking):
    the handler leaves by ExecutionParked and is resumed when the answer comes.
    """
    message = _get(message_id)
    if message.status == Message.Status.ANSWERED:
        return message
    if message.status == Message.Status.EXPIRED:
        raise _expired(message, timeout)
    if timeout is not None and message.expires_at is None:
        # Kept on the row, so that a resumed wait keeps the first deadline.
        message.expires_at = timezone.now() + timedelta(seconds=float(timeout))
        Message.objects.filter(pk=message.pk).update(expires_at=message.expires_at)
    poll = safety_poll_seconds()
    deadline = None
    if message.expires_at is not None:
        deadline = time.monotonic() + (message.expires_at - timezone.now()).total_seconds()
    execution = None
    if execution_id is not None:
        execution = guard().current(execution_id) or Execution.objects.get(pk=execution_id)
    park_after = float(settings.AUTOMATION["PARK_AFTER_SECONDS"])
    park_at = time.monotonic() + park_after if execution is not None and park_after else None
    marked = mark_waiting(execution, message) if execution is not None else False
    answered = parked = False
    wakeup = Wakeup([notify.message_channel(message.pk)])
    try:
        while True:
            status = Message.objects.values_list("status", flat=True).get(pk=message.pk)
            if status == Message.Status.ANSWERED:
                answered = True
                break
            if status == Message.Status.EXPIRED:
                message.refresh_from_db(fields=["status", "expires_at"])
                raise _expired(message, timeout)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                if message.expire():
                    raise _expired(message, timeout)
                continue  # answered at the last moment
            if execution is not None and (
                guard().park_requested or (park_at is not None and time.monotonic() >= park_at)
            ):
                parked = True
                raise ExecutionParked()
            step = poll if remaining is None else min(poll, remaining)
            if park_at is not None:
                step = max(0.01, min(step, park_at - time.monotonic()))
            wakeup.next(step)  # a notice, a confirmation or quiet (or Redis away): re-read
    finally:
        wakeup.close()
        if not answered and not parked:  # a parked wait keeps its form open (the runner parks it)
            message.expire()
        if marked and not parked and execution is not None and not mark_running(execution):
            if Execution.objects.filter(pk=execution.pk).filter(
                Q(parked=True) | Q(resumes__gt=execution.resumes)
            ).exists():
                raise ExecutionParked()  # parked and resumed elsewhere: that run goes on
            raise ExecutionTerminated()  # it was cancelled or ended while it waited
    return _get(message.pk)


def create(execution: Execution | None, step: int | None, **kwargs: Any) -> Message:
    """A new message form; a resumed handler gets the one its earlier run created."""
    if execution is not None and execution.resumes and step is not None:
        existing = Message.objects.filter(execution=execution, step=step).first()
        if existing is not None:
            return existing
    message_type = str(kwargs.get("message_type") or "INFO").upper()
    if message_type not in MESSAGE_TYPES:
        raise FlowApiError(f"message_type must be one of {', '.join(MESSAGE_TYPES)}, not "
                           f"{kwargs.get('message_type')!r}")
    return Message.objects.create(
        execution=execution,
        step=step,
        subject=str(kwargs.get("subject") or "")[:255],
        text=str(kwargs.get("text") or ""),
        body=build_form(kwargs.get("body"), kwargs.get("request")),
        message_type=message_type,
    )


def port_call(
    op: str, execution: Execution | None, step: int | None = None, **kwargs: Any
) -> dict[str, Any]:
    """flow_api's `message` port: ops "create", "read" and "wait"; returns the record."""
    if op == "create":
        return message_record(create(execution, step, **kwargs))
    if op == "read":
        return message_record(_get(kwargs.get("id")), execution)
    if op == "wait":
        timeout = kwargs.get("timeout")
        if timeout is not None and float(timeout) <= 0:
            raise FlowApiError("timeout must be a positive number of seconds")
        execution_id = execution.pk if execution is not None else None
        return message_record(wait(int(kwargs["id"]), execution_id, timeout), execution)
    raise FlowApiError(f"unknown message operation {op!r}")
