"""The engine: how an execution is started, carried out, awaited and ended.

Its public verbs, for the feature rooms, the interfaces, the tests and the shell:

    start_execution(...)   the one way in (start)       cancel_execution(...)   (ending)
    run_deferred(...)      start a run=False one         end_executions(...)     (ending)
    wait_for([...])        children, API waits (waiting) claim(id)               (start)
    wait_stopped([...])    a cancel's end (waiting)

The rest lives one module per concern (docs/ARCHITECTURE.md): dispatch (the only Celery
send), transitions (every status write), limits, runner, port, guard, notify, parking,
reconciler, records, ...
"""

from __future__ import annotations

from .dispatch import send_warning
from .ending import (
    cancel_execution,
    descendant_ids,
    end_executions,
    end_timed_out,
    pause_execution,
    resume_execution,
)
from .start import StartError, claim, resolve_flow, run_deferred, start_execution
from .transitions import NOT_ENDED
from .waiting import wait_for, wait_for_started, wait_stopped

__all__ = [
    "NOT_ENDED",
    "StartError",
    "cancel_execution",
    "claim",
    "descendant_ids",
    "end_executions",
    "end_timed_out",
    "pause_execution",
    "resolve_flow",
    "resume_execution",
    "run_deferred",
    "send_warning",
    "start_execution",
    "wait_for",
    "wait_for_started",
    "wait_stopped",
]
