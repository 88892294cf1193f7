"""Flows by name (or id) as `start_execution` needs them, kept in a worker process while it
hears of every change.

A loop of `this.flow('x')` would otherwise read flow x once per child: one statement of
three on the child's hot path. A worker process's guard (executions.engine.guard) listens
on the flows channel; a saved, deleted or bulk-updated flow publishes there once its
transaction commits (executions.signals), and every entry is dropped. Entries are kept
only while a guard's subscription stands in the process (`listening`: the workers', not a
web process's), and for at most `MAX_AGE_SECONDS` in case a change came another way (SQL
by hand). A read that raced a change is not kept (`generation`).
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

from ..models import Flow

MAX_AGE_SECONDS = 30.0
_MAX_ENTRIES = 1000

_entries: dict[Any, tuple[float, Flow]] = {}
_listening_pid = 0  # the process whose guard hears the flows channel now (0: none)
_generation = 0  # moved by every change heard: a read begun before it is not kept


def listening(on: bool) -> None:
    """The guard (un)subscribed: what was kept may have missed a change either way."""
    global _listening_pid
    clear()
    _listening_pid = os.getpid() if on else 0


def clear() -> None:
    global _generation
    _generation += 1
    _entries.clear()


def generation() -> int:
    return _generation


def get(key: Any) -> Flow | None:
    """A copy of the flow kept under `key` (its name or id), or None."""
    if _listening_pid != os.getpid():
        return None
    found = _entries.get(key)
    if found is None or time.monotonic() - found[0] > MAX_AGE_SECONDS:
        return None
    return copy.copy(found[1])


def put(flow: Flow, read_at_generation: int) -> None:
    """Keep `flow`, read while the generation was `read_at_generation`."""
    if _listening_pid != os.getpid() or read_at_generation != _generation:
        return
    if len(_entries) >= _MAX_ENTRIES:
        _entries.clear()
    entry = (time.monotonic(), copy.copy(flow))
    _entries[flow.name] = _entries[flow.pk] = entry
