"""Parked waits: a flow waiting for a person's answer holds no worker process.

A message wait is held in its process only for a while (`PARK_AFTER_SECONDS`), or until the
worker is asked to stop or dies. Then the execution is *parked*: WAITING, `parked`, no
process. Its handler has left by `ExecutionParked`, and so have the handlers of the parents
that ran it inline (they were awaiting it; they park too, waiting for their child).

When the answer arrives (or the parked child ends, or the wait times out), `resume` sends
the execution again. Its handler runs from the start, and every flow_api call that it had
made before returns what it returned then: children and message forms carry their step
(the n-th call of their execution) and are found again, not started twice (port.py,
messages.py). Plain Python before the wait runs again; see docs/README-schedules.md.

Every change is one conditional UPDATE, so a resume and a park racing (or two
reconcilers) have exactly one winner. `resumes` counts resumptions: a process that held a
wait which was resumed elsewhere in the meantime sees the count moved and steps aside.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from . import limits, services
from .models import Execution, Message

log = logging.getLogger(__name__)
Status = Execution.Status


def park(execution: Execution) -> bool:
    """RUNNING or WAITING -> WAITING parked, unless it was resumed elsewhere or ended."""
    return bool(
        Execution.objects.filter(
            pk=execution.pk, status__in=(Status.RUNNING, Status.WAITING), parked=False,
            resumes=execution.resumes,
        ).update(status=Status.WAITING, parked=True, heartbeat_at=None)
    )


def resume(
    execution_id: int, *, waiting_for_children: bool = False, message_id: int | None = None
) -> bool:
    """WAITING parked -> PENDING, sent to its queue; exactly one caller wins.

    `waiting_for_children`: only if it is parked for a child (as when one ended);
    `message_id`: only if it is parked for that message (as when it was answered).
    """
    parked = Execution.objects.filter(pk=execution_id, status=Status.WAITING, parked=True)
    if waiting_for_children:
        parked = parked.filter(waiting_message__isnull=True)
    if message_id is not None:
        parked = parked.filter(waiting_message_id=message_id)
    now = timezone.now()
    if not parked.update(
        status=Status.PENDING, parked=False, waiting_message=None, resumes=F("resumes") + 1,
        heartbeat_at=now,  # the reconciler re-sends from here if the message is lost
    ):
        return False
    execution = Execution.objects.get(pk=execution_id)
    if execution.limited:
        limits.dispatch_if_free(execution)
    else:
        services.dispatch(execution)
    return True


def resume_parents(ids: Iterable[int]) -> None:
    """Executions `ids` ended: a parent parked while it awaited one of them goes on."""
    parents = Execution.objects.filter(
        pk__in=Execution.objects.filter(pk__in=list(ids), parent__isnull=False).values("parent_id"),
        status=Status.WAITING, parked=True, waiting_message__isnull=True,
    ).values_list("pk", flat=True)
    for pk in list(parents):
        resume(pk, waiting_for_children=True)


def park_wait(execution: Execution, message_id: int | None) -> None:
    """Park an execution whose handler left by ExecutionParked (`message_id`: the form it
    waits for, None for a parent awaiting its child); if the answer came meanwhile, resume.

    `respond` answers first and then resumes a parked waiter; parking checks the message
    after parking. Whichever comes second sees the other, so no answer is missed.
    """
    if (
        park(execution)
        and message_id is not None
        and Message.objects.filter(pk=message_id).exclude(status=Message.Status.OPEN).exists()
    ):
        resume(execution.pk)


def answered(message: Message) -> None:
    """A message was answered: resume its execution if it parked for it; if the process
    holding the wait has died (its heartbeat stopped), park it now and resume it."""
    if message.execution_id is None or resume(message.execution_id, message_id=message.pk):
        return
    lost = with_stale_ancestors(
        list(
            Execution.objects.filter(
                pk=message.execution_id, waiting_message=message, parked=False,
                heartbeat_at__lt=timezone.now() - timedelta(seconds=wait_lost_seconds()),
            ).values_list("pk", flat=True)
        )
    )
    settle_lost(lost, LOST)


LOST = "worker lost: its worker stopped without ending it"


def with_stale_ancestors(ids: list[int]) -> list[int]:
    """`ids` and the ancestors that ran them inline in the same (dead) process: those
    still RUNNING or WAITING whose heartbeat is as old as a lost wait's."""
    found = list(ids)
    level = ids
    stale_before = timezone.now() - timedelta(seconds=wait_lost_seconds())
    while level:
        level = list(
            Execution.objects.filter(
                pk__in=Execution.objects.filter(pk__in=level).values("parent_id"),
                status__in=(Status.RUNNING, Status.WAITING), parked=False,
                heartbeat_at__lt=stale_before,
            ).exclude(pk__in=found).values_list("pk", flat=True)
        )
        found += level
    return found


def settle_lost(ids: list[int], reason: str) -> list[int]:
    """Executions whose process died: park those waiting for a message, and those that
    awaited one of them inline (they died with it); end the others ENDED_ERROR `reason`.
    Returns the ids ended."""
    if not ids:
        return []
    rows = dict(
        Execution.objects.filter(pk__in=ids, status__in=(Status.RUNNING, Status.WAITING), parked=False)
        .values_list("pk", "parent_id")
    )
    parkable = set(
        Execution.objects.filter(pk__in=rows)
        .filter(
            Q(waiting_message__isnull=False)
            | Q(children__status=Status.WAITING, children__parked=True)
        )
        .values_list("pk", flat=True)
    )
    for pk in list(parkable):  # the ancestors in the same dead process await them
        parent = rows.get(pk)
        while parent in rows and parent not in parkable:
            parkable.add(parent)
            parent = rows.get(parent)
    for execution in Execution.objects.filter(pk__in=parkable).only("pk", "resumes", "waiting_message"):
        park_wait(execution, execution.waiting_message_id)
    if parkable:
        log.warning("parked executions %s: their worker stopped while they waited", sorted(parkable))
    return services.end_executions(
        [pk for pk in ids if pk not in parkable], Status.ENDED_ERROR, reason
    )


def sweep() -> dict[str, int]:
    """The reconciler's pass over parked waits: expire messages past their timeout, resume
    what a lost notice or a crash left parked, end parked executions past their timeout."""
    now = timezone.now()
    expired = list(
        Message.objects.filter(status=Message.Status.OPEN, expires_at__lt=now).values_list("pk", flat=True)
    )
    if expired:
        Message.objects.filter(pk__in=expired, status=Message.Status.OPEN).update(
            status=Message.Status.EXPIRED
        )
    parked = Execution.objects.filter(status=Status.WAITING, parked=True)
    stuck = parked.filter(
        Q(waiting_message__isnull=False) & ~Q(waiting_message__status=Message.Status.OPEN)
        | Q(waiting_message__isnull=True) & ~Q(children__status__in=services.NOT_ENDED)
    ).values_list("pk", flat=True).distinct()
    resumed = sum(resume(pk) for pk in list(stuck)[:1000])
    timed_out = 0
    for pk, started_at, timeout in parked.filter(timeout__isnull=False).values_list(
        "pk", "started_at", "timeout"
    )[:1000]:
        if started_at and timeout and started_at + timedelta(seconds=timeout) < now:
            timed_out += len(services.end_timed_out(pk, timeout))
    return {"resumed": resumed, "timed_out": timed_out}


def wait_lost_seconds() -> float:
    """A message wait whose heartbeat is this old has lost its process (it does nothing
    but wait, so its heartbeat thread is never busy)."""
    knobs = settings.AUTOMATION
    return min(float(knobs["WORKER_LOST_SECONDS"]), 4 * float(knobs["HEARTBEAT_SECONDS"]))
