"""Runs one CONNECTION execution: build its inputs, call its connector, mask secrets.

executions.engine.runner calls `run(execution)` in the worker. Inputs are the stored
connection's `value`, then its decrypted `secrets`, then the execution's `input_value`,
then the secrets given inline to this call. Secrets never reach input_value, the log,
the error message or output_value: every string that holds one is masked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from connectors import registry
from connectors.base import ConnectorError, Scrubber, secret_strings, url_password
from connectors.models import Connection, ExecutionSecret, UnreadableSecrets

from ..models import Execution, ExecutionLog
from .guard import guard


def _take_inline_secrets(execution: Execution) -> dict[str, Any]:
    """The secrets given inline to this call; they are deleted once read (used once)."""
    row = ExecutionSecret.objects.filter(execution_id=execution.pk).first()
    if row is None:
        return {}
    secrets = row.secrets
    if isinstance(secrets, UnreadableSecrets):
        raise ConnectorError(f"the secrets given to this call cannot be read: {secrets.error}")
    row.delete()
    return dict(secrets)


def inputs_of(execution: Execution) -> tuple[str, dict[str, Any], Scrubber]:
    """(connector type, merged inputs, a scrubber for every secret among them)."""
    inline = _take_inline_secrets(execution)
    value: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    kind = execution.connector_type
    if execution.connection_id is not None:
        conn = Connection.objects.filter(pk=execution.connection_id).first()
        if conn is None:
            raise ConnectorError("the connection of this execution was deleted")
        if isinstance(conn.secrets, UnreadableSecrets):
            raise ConnectorError(f"connection {conn.name!r}: {conn.secrets.error}")
        value, secrets, kind = dict(conn.value), dict(conn.secrets), conn.connector_type
    # The masked placeholders in input_value stand for the inline secrets, which win.
    merged = {**value, **secrets, **(execution.input_value or {}), **inline}
    hidden: list[str] = []
    for key, item in {**secrets, **inline}.items():
        hidden.extend(secret_strings(item, key))
    protected = execution.protect_inputs or []
    for key, item in merged.items():  # protect_inputs of the call: masked like secrets
        if "*" in protected or key in protected:
            hidden.extend(secret_strings(item))
    for item in merged.values():  # a password inside a URL or DSN
        password = url_password(item) if isinstance(item, str) else None
        if password:
            hidden.append(password)
    return kind, merged, Scrubber(hidden)


def run(execution: Execution) -> dict[str, Any]:
    """Make the call; its output_value, or an exception whose message names the cause."""
    scrubber = Scrubber()
    try:
        kind, inputs, scrubber = inputs_of(execution)
        connector = registry.get(kind)(
            inputs, execution_id=execution.pk, scrubber=scrubber,
            log=_logger(execution.pk), interruptible=_interruptible,
        )
        output = connector.run()
    except ConnectorError as exc:
        if exc.output is not None:  # what the peer answered, for a flow that catches it
            Execution.objects.filter(pk=execution.pk).update(
                output_value=scrubber.json(exc.output)
            )
        raise type(exc)(scrubber.text(str(exc))) from None
    except Exception as exc:  # a library error we did not foresee: still no secret in it
        raise ConnectorError(scrubber.text(f"{type(exc).__name__}: {exc}")) from None
    return scrubber.json(output)  # type: ignore[no-any-return]


def _logger(execution_id: int) -> Any:
    """What a connector calls to append an (already masked) entry to the execution's log."""

    def log(text: str, level: str, data: dict[str, Any]) -> None:
        ExecutionLog.objects.create(execution_id=execution_id, level=level, text=text, data=data)

    return log


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """A block of a connector's blocking I/O that a cancel (or the timeout) may interrupt."""
    with guard().interruptible():
        yield
