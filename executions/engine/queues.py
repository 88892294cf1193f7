"""Worker groups and the Celery queues they map to.

An execution belongs to a worker group (`Execution.queue`, from its flow or its parent)
and a mode. The Celery queue is `<group>.<mode>`, so experiments in development mode
never wait behind productive work, and a worker serves the groups it is started for.
"""

from __future__ import annotations

from django.conf import settings

_served: frozenset[str] | None = None


def default_group() -> str:
    return str(settings.AUTOMATION["DEFAULT_QUEUE"])


def celery_queue(group: str, mode: str) -> str:
    return f"{group or default_group()}.{mode}"


def set_served_queues(names: set[str] | frozenset[str]) -> None:
    """Recorded once by the worker's main process; forked pool processes inherit it."""
    global _served
    _served = frozenset(names)


def served_queues() -> frozenset[str]:
    """The Celery queues this process's worker consumes; empty outside a worker."""
    return _served or frozenset()


def serves(group: str, mode: str) -> bool:
    return celery_queue(group, mode) in served_queues()
