"""Finds work that a crash, a lost message or a dead worker left behind.

The database is the source of truth and the queue only wakes workers, so:
- RUNNING or WAITING executions whose heartbeat stopped end ENDED_ERROR "worker lost",
  or as they were asked to stop (a cancel whose process died: ENDED_CANCELLED),
  and their waiters are told (a waiting parent then raises DependencyFailedError), except
  those waiting for a message form's answer or sleeping: they are parked (executions.parking);
- parked waits whose answer, child end or timeout came without a resume are resumed;
- PENDING executions whose message may be gone (Redis restarted, flushed) are sent again;
  a second delivery is harmless because only one claim can win.
Every change is a conditional update, so two reconcilers running at once do no harm.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..models import Execution, Message
from . import ending, parking, retries
from .dispatch import dispatch
from .transitions import HELD, NOT_ENDED

log = logging.getLogger(__name__)
Status = Execution.Status


def reconcile() -> dict[str, int]:
    """One pass; returns how many executions it ended and re-sent."""
    knobs = settings.AUTOMATION
    now = timezone.now()

    lost_before = now - timedelta(seconds=float(knobs["WORKER_LOST_SECONDS"]))
    active = Execution.objects.filter(status__in=(Status.RUNNING, Status.WAITING), parked=False)
    lost = list(
        active.filter(Q(heartbeat_at__lt=lost_before) | Q(heartbeat_at__isnull=True, started_at__lt=lost_before))
        .values_list("pk", flat=True)[:1000]
    )
    # A message wait does nothing but wait: a shorter silence tells that its process died,
    # and it is parked (with the parents that ran it inline), not ended.
    waits_before = now - timedelta(seconds=parking.wait_lost_seconds())
    lost_waits = active.filter(
        Q(waiting_message__isnull=False) | Q(wake_at__isnull=False), heartbeat_at__lt=waits_before
    )
    lost += with_stale_ancestors(list(lost_waits.values_list("pk", flat=True)[:1000]))
    # Asked to stop, and no process beats for it any more: its code has stopped (it would
    # have been killed within the cancel grace), so it ends as asked.
    lost += list(
        Execution.objects.filter(status__in=HELD, parked=False, stop_requested_at__lt=waits_before)
        .exclude(stop_status="")
        .filter(Q(heartbeat_at__lt=waits_before) | Q(heartbeat_at__isnull=True))
        .values_list("pk", flat=True)[:1000]
    )
    ended = settle_lost(list(dict.fromkeys(lost)), LOST)
    swept = sweep()

    resend_before = now - timedelta(seconds=float(knobs["PENDING_RESEND_SECONDS"]))
    stale = list(
        Execution.objects.filter(status=Status.PENDING, deferred=False)
        .annotate(last_sent=Coalesce("heartbeat_at", "created_at"))
        .filter(last_sent__lt=resend_before)
        .order_by("pk")[:5000]
    )
    resent = 0
    for execution in stale:
        # Only the reconciler that moves the mark re-sends, so two of them do not both send.
        if Execution.objects.filter(
            pk=execution.pk, status=Status.PENDING, heartbeat_at=execution.heartbeat_at
        ).update(heartbeat_at=now):
            dispatch(execution)
            resent += 1
    if ended or resent or any(swept.values()):
        log.warning(
            "reconciler: %d lost executions ended, %d re-sent, parked waits: %s",
            len(ended), resent, swept,
        )
    return {"lost": len(ended), "resent": resent, **swept}


def answered(message: Message) -> None:
    """A message was answered: resume its execution if it parked for it; if the process
    holding the wait has died (its heartbeat stopped), park it now and resume it."""
    if message.execution_id is None or parking.resume(message.execution_id, message_id=message.pk):
        return
    lost = with_stale_ancestors(
        list(
            Execution.objects.filter(
                pk=message.execution_id, waiting_message=message, parked=False,
                heartbeat_at__lt=timezone.now() - timedelta(seconds=parking.wait_lost_seconds()),
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
    stale_before = timezone.now() - timedelta(seconds=parking.wait_lost_seconds())
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
    awaited one of them inline (they died with it); end the others ENDED_ERROR `reason`
    (those asked to stop end as asked). Returns the ids ended."""
    if not ids:
        return []
    rows = dict(
        Execution.objects.filter(
            pk__in=ids, status__in=(Status.RUNNING, Status.WAITING), parked=False, stop_status=""
        ).values_list("pk", "parent_id")
    )
    parkable = set(
        Execution.objects.filter(pk__in=rows)
        .filter(
            Q(waiting_message__isnull=False)
            | Q(wake_at__isnull=False)  # a sleep: parked, it resumes when due (engine/timers.py)
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
        parking.park_wait(execution, execution.waiting_message_id)
    if parkable:
        log.warning("parked executions %s: their worker stopped while they waited", sorted(parkable))
    rest = [pk for pk in ids if pk not in parkable]
    # Replayed on another worker (Flow.recovery), or its next attempt (retry_policy).
    replay = retries.replayable(rest)
    handed = retries.hand_over(list(Execution.objects.filter(pk__in=replay)), reason)
    retried = [
        e.pk for e in Execution.objects.filter(pk__in=[pk for pk in rest if pk not in replay])
        .exclude(retry_policy={})
        if retries.schedule_retry(e, reason, ["WorkerLost"], e.started_at)
    ]
    return ending.end_executions(
        [pk for pk in rest if pk not in handed and pk not in retried], Status.ENDED_ERROR, reason
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
        | Q(waiting_message__isnull=True) & ~Q(children__status__in=NOT_ENDED)
    ).values_list("pk", flat=True).distinct()
    resumed = sum(parking.resume(pk) for pk in list(stuck)[:1000])
    timed_out = 0
    for pk, started_at, timeout in parked.filter(timeout__isnull=False).values_list(
        "pk", "started_at", "timeout"
    )[:1000]:
        if started_at and timeout and started_at + timedelta(seconds=timeout) < now:
            timed_out += len(ending.end_timed_out(pk, timeout))
    return {"resumed": resumed, "timed_out": timed_out}
