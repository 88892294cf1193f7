"""What the engine's `start_execution` asks of connectors for a CONNECTION execution."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import registry
from .base import Connector
from .models import Connection, ExecutionSecret


class PrepareError(ValueError):
    """A CONNECTION execution cannot be created; `field` names the input at fault (the
    engine turns it into its StartError)."""

    def __init__(self, field: str, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.not_found = not_found


@dataclass
class PreparedCall:
    """A CONNECTION execution about to be created."""

    connection: Connection | None
    connector_type: str
    name: str
    queue: str
    input_value: dict[str, Any]  # secrets masked: safe to store in clear
    secrets: dict[str, Any] = field(default_factory=dict)  # inline secrets, stored encrypted


def prepare(
    connection: str | None, connector_type: str | None, input_value: dict[str, Any]
) -> PreparedCall:
    """Check what a CONNECTION execution is for and take its inline secrets apart.

    An unknown connection raises PrepareError (not_found); an unknown connector type is
    accepted here and ends the execution ENDED_ERROR naming it, like a missing input.
    """
    conn: Connection | None = None
    if connection not in (None, ""):
        if not isinstance(connection, str):
            raise PrepareError("connection", "connection must be the name of a stored connection")
        conn = Connection.objects.filter(name=connection).defer("secrets").first()
        if conn is None:
            raise PrepareError("connection", f"no connection named {connection!r}", not_found=True)
    if connector_type is not None and not isinstance(connector_type, str):
        raise PrepareError("connector_type", "connector_type must be a text such as 'REST'")
    kind = registry.normalize(connector_type)
    if conn is not None:
        if kind and kind != registry.normalize(conn.connector_type):
            raise PrepareError(
                "connector_type",
                f"connection {conn.name!r} is of type {conn.connector_type}, not {kind}",
            )
        kind = registry.normalize(conn.connector_type)
    elif not kind:
        raise PrepareError(
            "connection", "a CONNECTION execution needs a connection name or a connector_type"
        )
    connector: type[Connector] = registry.get(kind) if registry.is_known(kind) else Connector
    public, secrets = connector.split_secrets(input_value)
    return PreparedCall(
        connection=conn,
        connector_type=kind,
        name=conn.name if conn is not None else kind,
        queue=conn.queue if conn is not None else "",
        input_value=public,
        secrets=secrets,
    )


def store_secrets(execution: Any, secrets: dict[str, Any]) -> None:
    """Keep a CONNECTION execution's inline secrets, encrypted, until it has run."""
    if secrets:
        ExecutionSecret.objects.create(execution=execution, secrets=secrets)  # type: ignore[misc]
