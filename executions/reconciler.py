"""Finds work that a crash, a lost message or a dead worker left behind.

The database is the source of truth and the queue only wakes workers, so:
- RUNNING or WAITING executions whose heartbeat stopped end ENDED_ERROR "worker lost",
  and their waiters are told (a waiting parent then raises DependencyFailedError), except
  those waiting for a message form's answer: they are parked (executions.parking);
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

from . import parking, services
from .models import Execution

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
    lost_waits = active.filter(waiting_message__isnull=False, heartbeat_at__lt=waits_before)
    lost += parking.with_stale_ancestors(list(lost_waits.values_list("pk", flat=True)[:1000]))
    ended = parking.settle_lost(list(dict.fromkeys(lost)), parking.LOST)
    swept = parking.sweep()

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
            services.dispatch(execution)
            resent += 1
    if ended or resent or any(swept.values()):
        log.warning(
            "reconciler: %d lost executions ended, %d re-sent, parked waits: %s",
            len(ended), resent, swept,
        )
    return {"lost": len(ended), "resent": resent, **swept}
