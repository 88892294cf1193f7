"""The connector types by name; a type's module is imported only when first used."""

from __future__ import annotations

import importlib
from typing import Any

from .base import Connector, UnknownConnectorType

# type name -> module that defines its `Connector` class
MODULES: dict[str, str] = {
    "REST": "connectors.rest",
    "SQLPG": "connectors.sqlpg",
    "SSH": "connectors.ssh",
    "SMTP": "connectors.smtp",
    "GIT": "connectors.git",
    "SCP": "connectors.scp",
}

_loaded: dict[str, type[Connector]] = {}


def normalize(name: Any) -> str:
    """Type names are case-insensitive: 'rest' is 'REST'."""
    return str(name or "").strip().upper()


def known_types() -> list[str]:
    return sorted(MODULES)


def is_known(name: Any) -> bool:
    return normalize(name) in MODULES


def get(name: Any) -> type[Connector]:
    """The connector class of a type; UnknownConnectorType naming it if there is none."""
    key = normalize(name)
    found = _loaded.get(key)
    if found is not None:
        return found
    if key not in MODULES:
        raise UnknownConnectorType(
            f"unknown connector type {str(name)!r}; one of {', '.join(known_types())}"
        )
    module = importlib.import_module(MODULES[key])
    connector: type[Connector] = module.Connector
    _loaded[key] = connector
    return connector
