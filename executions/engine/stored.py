"""The records a flow may list and change through flow_api: files, flows, settings,
connections, webhooks, executions.

Every change needs the Django model permission the REST API asks for (`add_`, `change_`,
`delete_<model>`), of the user the execution runs for; every listing, and every read of one
record, needs `view_<model>`.
An execution without a user (a schedule's, an error handler's) is the installation's own:
it may use settings and files as it always could, and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet

from connectors.models import Connection
from flow_api.exceptions import (
    FlowApiError,
    InvalidInputError,
    PermissionDenied,
    ResourceNotFoundError,
)
from flow_api.values import json_safe

from ..models import Execution, File, Flow, Setting, Webhook
from .records import record

# Records that executions without a user may change (shared data, as before).
_SHARED_DATA = {"setting", "file"}

_MODELS: dict[str, type[Model]] = {
    "flow": Flow, "setting": Setting, "file": File, "webhook": Webhook,
    "connection": Connection, "execution": Execution,
}

# The fields a listing filter may name (Cloudomation's name -> the model's lookup).
_COMMON = {"id": "pk", "name": "name", "created_at": "created_at", "modified_at": "updated_at"}
_FILTER_FIELDS: dict[str, dict[str, str]] = {
    "flow": {**_COMMON, "is_enabled": "enabled", "enabled": "enabled", "revision": "revision",
             "description": "description"},
    "setting": {**_COMMON, "description": "description"},
    "file": {**_COMMON, "size": "size", "content_type": "content_type"},
    "webhook": {**_COMMON, "is_enabled": "enabled", "enabled": "enabled",
                "flow_name": "flow__name", "mode": "mode"},
    "execution": {
        "id": "pk", "name": "name", "type": "type", "status": "status", "mode": "mode",
        "parent_execution_id": "parent_id", "root_execution_id": "root_id",
        "flow_id": "flow_id", "flow_name": "flow__name", "flow": "flow__name",
        "created_at": "created_at", "started_at": "started_at", "ended_at": "ended_at",
        "created_by": "user_id", "user_name": "user__username", "priority": "priority",
    },
}
_OPS = {"eq": "exact", "ne": "exact", "lt": "lt", "le": "lte", "lte": "lte", "gt": "gt",
        "ge": "gte", "gte": "gte", "in": "in", "like": "regex", "ilike": "iregex"}
_LIST_MAX = 1000  # records one listing returns at most


def _label(kind: str) -> str:
    return f"{_MODELS[kind]._meta.app_label}.%s_{_MODELS[kind]._meta.model_name}"


def require(execution: Execution, kind: str, action: str, name: Any = "") -> None:
    """Refuse (PermissionDenied naming the permission) unless the execution's user has
    `action` (view, add, change, delete) on the model of `kind`."""
    if kind not in _MODELS:
        raise FlowApiError(f"no record kind {kind!r}")
    user = execution.user
    if user is None and kind in _SHARED_DATA:
        return
    perm = _label(kind) % action
    if user is not None and user.is_active and user.has_perm(perm):
        return
    who = f"user {user.get_username()!r}" if user is not None else "an execution without a user"
    what = f"{kind} {name!r}" if name else f"{kind}s"
    raise PermissionDenied(f"{who} may not {action} {what}: that needs the permission {perm}")


# --- files -------------------------------------------------------------------------------
def _max_file_bytes() -> int:
    return int(settings.AUTOMATION["MAX_FILE_BYTES"])


def file_too_large(size: int) -> str:
    """The refusal of a file of `size` bytes, or "" if it fits."""
    limit = _max_file_bytes()
    if size <= limit:
        return ""
    return f"the file has {size} bytes; the limit is {limit} (AUTOMATION_MAX_FILE_BYTES)"


def file_record(found: File, content: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": found.pk, "name": found.name, "size": found.size,
        "content_type": found.content_type, "created_at": found.created_at.isoformat(),
        "modified_at": found.updated_at.isoformat(),
        "user_name": found.user.get_username() if found.user_id and found.user else None,
    }
    if content:  # the port speaks JSON: bytes cross it base64-encoded
        data["content_base64"] = base64.b64encode(bytes(found.content)).decode("ascii")
    return data


def file_op(execution: Execution, op: str, name: str, content_base64: str | None = None,
            content_type: str | None = None) -> Any:
    if not isinstance(name, str) or not name:
        raise InvalidInputError("a file name is a non-empty string")
    if op == "exists":
        require(execution, "file", "view", name)
        return File.objects.filter(name=name).exists()
    if op == "get":
        require(execution, "file", "view", name)
        found = File.objects.select_related("user").filter(name=name).first()
        return None if found is None else file_record(found, content=True)
    if op == "delete":
        require(execution, "file", "delete", name)
        File.objects.filter(name=name).delete()
        return None
    if op != "save":
        raise FlowApiError(f"unknown file operation {op!r}")
    existing = File.objects.filter(name=name).first()
    require(execution, "file", "change" if existing else "add", name)
    try:
        data = base64.b64decode(content_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("content: not valid base64") from None
    too_large = file_too_large(len(data))
    if too_large:
        raise InvalidInputError(f"file {name!r}: {too_large}")
    target = existing or File(name=name)
    target.set_content(data)
    if content_type is not None:
        target.content_type = str(content_type)[:255]
    target.user = execution.user
    _clean(target, exclude=["name"] if existing else None)
    target.save()
    return file_record(target)


def _clean(instance: Model, exclude: list[str] | None = None) -> None:
    """The model's own validation (as the admin and the API run it), as a flow error."""
    try:
        instance.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
        raise InvalidInputError(details) from None


# --- listing -----------------------------------------------------------------------------
def _like(pattern: str) -> str:
    """SQL LIKE (% any, _ one character) as an anchored regular expression."""
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return "^" + "".join(parts) + "$"


def _condition(kind: str, expression: Any) -> Q:
    """Q of a Cloudomation filter: {'field', 'op', 'value'}, or {'and': [...]} /
    {'or': [...]} of them, or a list of them (all must hold)."""
    if isinstance(expression, list):
        expression = {"and": expression}
    if not isinstance(expression, dict):
        raise InvalidInputError("filter: a dict {'field': ..., 'op': ..., 'value': ...}")
    for joiner in ("and", "or"):
        if joiner in expression:
            parts = expression[joiner]
            if not isinstance(parts, list) or not parts:
                raise InvalidInputError(f"filter: '{joiner}' takes a non-empty list of filters")
            combined = Q()
            for part in parts:
                combined = combined & _condition(kind, part) if joiner == "and" else combined | _condition(kind, part)
            return combined
    fields = _FILTER_FIELDS[kind]
    field, op, value = expression.get("field"), expression.get("op", "eq"), expression.get("value")
    if field not in fields:
        raise InvalidInputError(
            f"filter: unknown field {field!r} of {kind}s; known: {', '.join(sorted(fields))}")
    if op not in _OPS:
        raise InvalidInputError(f"filter: unknown op {op!r}; known: {', '.join(_OPS)}")
    if op == "in" and not isinstance(value, list):
        raise InvalidInputError("filter: op 'in' takes a list as its value")
    if op in ("like", "ilike"):
        if not isinstance(value, str):
            raise InvalidInputError(f"filter: op {op!r} takes a string pattern (% and _)")
        value = _like(value)
    query = Q(**{f"{fields[field]}__{_OPS[op]}": value})
    return ~query if op == "ne" else query


def _glob(pattern: str) -> str:
    """A file glob as an anchored regular expression: `*` within a folder, `**/` any folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            c = pattern[i]
            out.append("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c))
            i += 1
    return "^" + "".join(out) + "$"


def list_records(execution: Execution, kind: str, expression: Any = None,
                 options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The records of `kind` that match the filter (at most 1000), as flow_api sees them."""
    if kind not in _FILTER_FIELDS:
        raise FlowApiError(f"no listing of {kind!r}")
    require(execution, kind, "view")
    found: QuerySet[Any] = _MODELS[kind].objects.all()  # type: ignore[attr-defined]
    if expression is not None:
        found = found.filter(_condition(kind, expression))
    options = options or {}
    if kind == "file":
        folder, glob = options.get("dir"), options.get("glob")
        if folder:
            found = found.filter(name__startswith=str(folder).rstrip("/") + "/")
        if glob:
            prefix = str(folder).rstrip("/") + "/" if folder else ""
            found = found.filter(name__regex=_glob(prefix + str(glob)))
        return [file_record(f) for f in found.defer("content").select_related("user")[:_LIST_MAX]]
    if kind == "execution":
        return [record(e) for e in found.select_related("flow", "user")[:_LIST_MAX]]
    if kind == "flow":
        return [flow_record(f) for f in found[:_LIST_MAX]]
    if kind == "webhook":
        return [webhook_record(w) for w in found.select_related("flow")[:_LIST_MAX]]
    return [{"id": s.pk, "name": s.name, "description": s.description} for s in found[:_LIST_MAX]]


# --- reading and changing one record -----------------------------------------------------
def flow_record(flow: Flow) -> dict[str, Any]:
    return {
        "id": flow.pk, "name": flow.name, "script": flow.script, "description": flow.description,
        "timeout": flow.timeout, "queue": flow.queue, "enabled": flow.enabled,
        "is_enabled": flow.enabled, "revision": flow.revision,
        "created_at": flow.created_at.isoformat(), "modified_at": flow.updated_at.isoformat(),
    }


def webhook_record(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.pk, "name": hook.name, "flow_name": hook.flow.name if hook.flow else None,
        "is_enabled": hook.enabled, "enabled": hook.enabled, "mode": hook.mode,
        "description": hook.description,
    }


def connection_record(conn: Connection) -> dict[str, Any]:
    return {"id": conn.pk, "name": conn.name, "connector_type": conn.connector_type,
            "connection_type": conn.connector_type, "value": conn.value,
            "description": conn.description}


# What `save(...)` may change (Cloudomation's names -> the model's field).
_SAVABLE = {
    "flow": {"script": "script", "description": "description", "is_enabled": "enabled",
             "enabled": "enabled", "timeout": "timeout", "queue": "queue"},
    "connection": {"value": "value", "connector_type": "connector_type",
                   "connection_type": "connector_type", "description": "description"},
    "webhook": {"is_enabled": "enabled", "enabled": "enabled", "description": "description"},
}
_CREATABLE = {"flow", "connection"}  # a webhook needs a flow and a key: made in the API


def save_record(execution: Execution, kind: str, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Create or change the flow, connection or webhook `name` with `fields`, validated as
    the admin and the API validate it; a flow's save records a revision by its user."""
    if kind not in _SAVABLE:
        raise FlowApiError(f"no save of {kind!r}")
    allowed = _SAVABLE[kind]
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise InvalidInputError(
            f"{kind} {name!r}: cannot save {', '.join(unknown)}; known: {', '.join(allowed)}")
    model = _MODELS[kind]
    instance = model.objects.filter(name=name).first()  # type: ignore[attr-defined]
    if instance is None and kind not in _CREATABLE:
        raise ResourceNotFoundError(f"no {kind} {name!r}")
    require(execution, kind, "change" if instance is not None else "add", name)
    changed = {allowed[key] for key in fields}
    # An existing record is validated in the fields the flow changes (and its own clean()),
    # as a PATCH of the API does; a new one in all of them.
    exclude = None if instance is None else [
        f.name for f in model._meta.fields if f.name not in changed]
    if instance is None:
        instance = model(name=name)
    for key, value in fields.items():
        setattr(instance, allowed[key], json_safe(value, key) if key == "value" else value)
    _clean(instance, exclude=exclude)
    if kind == "flow":
        instance.revision_author = execution.user  # its FlowRevision names who saved it
    instance.save()
    if kind == "flow":
        return flow_record(instance)  # type: ignore[arg-type]
    if kind == "webhook":
        return webhook_record(instance)  # type: ignore[arg-type]
    return connection_record(instance)  # type: ignore[arg-type]


def require_setting(execution: Execution, op: str, name: str) -> None:
    """The permission check of a setting operation: reading it (get, exists, record) needs
    what listing settings needs; save, list_append and delete their change permission."""
    if op in ("get", "exists", "record"):
        require(execution, "setting", "view", name)
    elif op in ("save", "list_append"):
        exists = Setting.objects.filter(name=name).exists()
        require(execution, "setting", "change" if exists else "add", name)
    elif op == "delete":
        require(execution, "setting", "delete", name)
