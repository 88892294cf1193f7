"""The one narrow port between flow_api and the engine.

flow_api never imports Django. The engine installs an object with these methods
(`executions.engine.port.EnginePort`) and flow_api calls only them. Records cross the port as
plain dicts of JSON-friendly values.
"""

from __future__ import annotations

from typing import Any, Protocol


class Port(Protocol):
    def start_child(
        self, parent_id: int, kind: str, *, run: bool, wait: bool, name: str | None,
        inputs: dict[str, Any], target: dict[str, Any],
    ) -> dict[str, Any]: ...
    def run_deferred(self, execution_id: int, *, wait: bool) -> dict[str, Any]: ...
    def wait(
        self, waiter_id: int | None, ids: list[int], return_when: str, timeout: float | None
    ) -> list[dict[str, Any]]: ...
    def read(self, execution_id: int) -> dict[str, Any]: ...
    def cancel(self, execution_id: int) -> None: ...
    def save(
        self, execution_id: int, *, output_value: dict[str, Any] | None, name: str | None,
        message: str | None,
    ) -> dict[str, Any]: ...
    def log(self, execution_id: int, level: str, text: str, data: dict[str, Any]) -> None: ...
    def sleep(self, execution_id: int, seconds: float) -> None: ...
    def setting(self, op: str, name: str, value: Any = None) -> Any: ...
    def setting_lock(
        self, execution_id: int, op: str, name: str, timeout: float | None = None
    ) -> None: ...
    def flow_record(self, key: Any, by: str) -> dict[str, Any] | None: ...
    def connection_record(self, name: str) -> dict[str, Any] | None: ...
    def executions(self, filters: dict[str, Any]) -> list[dict[str, Any]]: ...
    def user(self, execution_id: int) -> dict[str, Any]: ...
    def message(self, op: str, execution_id: int | None, **kwargs: Any) -> dict[str, Any]: ...
    def save_schedule(self, fields: dict[str, Any]) -> dict[str, Any]: ...


_port: Port | None = None


def install(port: Port) -> None:
    """Called once by the engine when a worker (or the web process) starts."""
    global _port
    _port = port


def get() -> Port:
    if _port is None:
        raise RuntimeError("flow_api is used outside the engine: no port is installed")
    return _port
