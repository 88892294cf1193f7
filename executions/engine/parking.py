"""Parked waits: a flow waiting for a person's answer holds no worker process.

A message wait is held in its process only for a while (`PARK_AFTER_SECONDS`), or until the
worker is asked to stop or dies. Then the execution is *parked*: WAITING, `parked`, no
process. Its handler has left by `ExecutionParked`, and so have the handlers of the parents
that ran it inline (they were awaiting it; they park too, waiting for their child).

When the answer arrives (or the parked child ends, or the wait times out), `resume` sends
the execution again. Its handler runs from the start, and every flow_api call that it had
made before returns what it returned then: children and message forms carry their step
(the n-th call of their execution) and are found again, not started twice (engine/port.py,
messages/). Plain Python before the wait runs again; see docs/README-schedules.md.

Every change is one conditional UPDATE, so a resume and a park racing (or two
reconcilers) have exactly one winner. `resumes` counts resumptions: a process that held a
wait which was resumed elsewhere in the meantime sees the count moved and steps aside.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Q

from ..models import Execution, Message
from . import limits, transitions
from .dispatch import dispatch

log = logging.getLogger(__name__)
Status = Execution.Status


park = transitions.park  # RUNNING or WAITING -> WAITING parked


def resume(
    execution_id: int, *, waiting_for_children: bool = False, message_id: int | None = None,
    due_timer: bool = False,
) -> bool:
    """WAITING parked -> PENDING, sent to its queue; exactly one caller wins.

    `waiting_for_children`: only if it is parked for a child (as when one ended);
    `message_id`: only if it is parked for that message (as when it was answered);
    `due_timer`: only if it is parked in a sleep that is due (engine/timers.py).
    """
    if not transitions.unpark(
        execution_id, waiting_for_children=waiting_for_children, message_id=message_id,
        due_timer=due_timer,
    ):
        return False
    execution = Execution.objects.get(pk=execution_id)
    if execution.limited:
        limits.dispatch_if_free(execution)
    else:
        dispatch(execution)
    return True


# A parent parked while it awaited its children (not a form, not a sleep).
_PARKED_FOR_CHILDREN = Q(
    status=Status.WAITING, parked=True, waiting_message__isnull=True, wake_at__isnull=True
)


def resume_parents(ids: Iterable[int]) -> None:
    """Executions `ids` ended: a parent parked while it awaited one of them goes on."""
    parents = Execution.objects.filter(pk__in=list(ids), parent__isnull=False)
    _resume_parked(set(parents.values_list("parent_id", flat=True)))


def resume_parent(parent_id: int) -> None:
    """A child of `parent_id` ended (its caller knows the parent): `resume_parents`."""
    _resume_parked([parent_id])


def _resume_parked(parent_ids: Iterable[int]) -> None:
    # Looked up by the parents' ids, not joined to the children: PostgreSQL planned the
    # join, on a table growing faster than its statistics, as a scan of every execution
    # not waiting for a form (0.8 ms for each child that ended; this takes 0.01 ms).
    parent_ids = list(parent_ids)
    if not parent_ids:
        return
    parked = Execution.objects.filter(_PARKED_FOR_CHILDREN, pk__in=parent_ids)
    for pk in list(parked.values_list("pk", flat=True)):
        resume(pk, waiting_for_children=True)


def park_wait(execution: Execution, message_id: int | None) -> bool:
    """Park an execution whose handler left by ExecutionParked (`message_id`: the form it
    waits for, None for a parent awaiting its child); if the answer came meanwhile, resume.
    False if it was not parked (asked to stop, or resumed elsewhere, meanwhile).

    `respond` answers first and then resumes a parked waiter; parking checks the message
    after parking. Whichever comes second sees the other, so no answer is missed.
    """
    if not park(execution):
        return False
    if message_id is not None and Message.objects.filter(pk=message_id).exclude(
        status=Message.Status.OPEN
    ).exists():
        resume(execution.pk)
    return True


def wait_lost_seconds() -> float:
    """A message wait whose heartbeat is this old has lost its process (it does nothing
    but wait, so its heartbeat thread is never busy)."""
    knobs = settings.AUTOMATION
    return min(float(knobs["WORKER_LOST_SECONDS"]), 4 * float(knobs["HEARTBEAT_SECONDS"]))
