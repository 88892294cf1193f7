"""Per-flow concurrency limits, held across all workers by the flow's row lock.

A flow with `concurrency_limit = N` has at most N executions (of type FLOW) RUNNING,
WAITING or PAUSED at once, whichever worker or parent runs them; the others stay PENDING
and start oldest first as slots free up.

How it holds:

- Whether a limit holds an execution is decided when it is created: `start_execution` sets
  `Execution.limited` when its flow has a `concurrency_limit` then. So a limit added to a
  flow later holds the executions created after it, not those already waiting; a limit
  removed later lets the waiting ones start at their next claim (`claim` below finds no
  limit and claims). The migration that added the column marked the existing executions
  of limited flows.
- `start.claim` claims every execution with one conditional UPDATE whose condition also
  says "not limited" (a column of the row itself, no subquery), so an unlimited flow pays
  no extra query. When that UPDATE misses, `claim` here looks at the row: only a PENDING
  execution of a limited flow goes on, in one short transaction that locks the flow's row
  (`SELECT ... FOR UPDATE`, which serialises the claims of one flow on every worker),
  counts the flow's active executions, and claims only if a slot is free and no older
  execution of the flow waits on the same queue. A refused message is simply dropped: the
  row stays PENDING, the database is the truth and the queue only wakes workers.
- A new execution is sent at its start only if a slot may be free for it
  (`dispatch_if_free`); the others wait without a message, so a burst of starts does not
  queue refused messages in front of the ones that can run.
- Whoever leaves a slot free sends the oldest waiting executions again, one message per
  free slot: `release` when an execution of a limited flow ends (the runner calls it),
  and a claim that finds a slot free (so a refusal for order never leaves a slot idle).
  A second message for the same execution is harmless: only one claim wins the row.
- Children are never created claimed when their flow is limited; a parent awaiting one
  claims it inline through `claim` like a worker would, so inline runs count too.
- A worker that dies ends its executions "worker lost" through the reconciler, which also
  re-sends old PENDING executions: a slot freed that way is used at the reconciler's next
  pass or the flow's next end, whichever comes first.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F, Q
from django.db.models.expressions import Window
from django.db.models.functions import RowNumber

from ..models import Execution, Flow
from . import transitions
from .dispatch import dispatch

log = logging.getLogger(__name__)
Status = Execution.Status

def _active(flow_id: int) -> int:
    return Execution.objects.filter(
        flow_id=flow_id, type=Execution.Type.FLOW, status__in=Execution.ACTIVE
    ).count()


def _waiting(flow_id: int) -> Q:
    return Q(flow_id=flow_id, type=Execution.Type.FLOW, status=Status.PENDING, deferred=False)


def _locked_limit(flow_id: int) -> int | None:
    """The flow's limit, read under its row lock (held until the transaction ends)."""
    return (
        Flow.objects.select_for_update()
        .filter(pk=flow_id)
        .values_list("concurrency_limit", flat=True)
        .first()
    )


def _send_next(flow_id: int, free: int, *, after: int | None = None) -> None:
    """Send the oldest `free` waiting executions of the flow again, per queue and mode (an
    older one on a queue nobody serves must not keep the served queues idle)."""
    if free <= 0:
        return
    waiting = Execution.objects.filter(_waiting(flow_id))
    if after is not None:
        waiting = waiting.exclude(pk=after)
    ranked = waiting.annotate(
        place=Window(RowNumber(), partition_by=[F("queue"), F("mode")], order_by=F("pk").asc())
    ).filter(place__lte=free)
    for execution in ranked.only("pk", "name", "type", "mode", "queue", "priority").order_by("pk"):
        dispatch(execution)  # after commit, like every message


def dispatch_if_free(execution: Execution) -> None:
    """Send a new execution of a limited flow now only if a slot may be free for it.

    Otherwise it waits without a message, and `release` sends it when its turn comes: a
    burst of starts then costs no refused messages queued in front of the ones that can
    run. Under the flow's lock, so a `release` running at the same time sees the new row
    (it waits for the lock, which is held until the caller's transaction commits).
    """
    flow_id = execution.flow_id
    assert flow_id is not None
    with transaction.atomic():
        limit = _locked_limit(flow_id)
        ahead = 0
        if limit is not None:
            ahead = _active(flow_id) + Execution.objects.filter(
                _waiting(flow_id), queue=execution.queue, mode=execution.mode, pk__lt=execution.pk
            ).count()
        if limit is None or ahead < limit:
            dispatch(execution)


def claim(execution_id: int) -> Execution | None:
    """PENDING -> RUNNING for an execution of a limited flow, if the limit allows it now.

    None when another caller won the row, or the flow's slots are taken, or an older
    execution of the flow waits on the same queue (it goes first). Called by
    `start.claim` when its unconditional-for-unlimited-flows UPDATE missed.
    """
    row = (
        Execution.objects.filter(
            pk=execution_id, status=Status.PENDING, deferred=False, limited=True
        )
        .values("flow_id", "queue", "mode")
        .first()
    )
    if row is None or row["flow_id"] is None:
        return None  # not PENDING any more: someone else claimed or ended it
    flow_id = row["flow_id"]
    with transaction.atomic():
        limit = _locked_limit(flow_id)
        if limit is None:  # the limit was removed since the plain claim missed
            won = transitions.claim_pending(execution_id)
        else:
            active = _active(flow_id)
            if active >= limit:
                return None
            older = Execution.objects.filter(
                _waiting(flow_id), queue=row["queue"], mode=row["mode"], pk__lt=execution_id
            )
            if older.exists():
                _send_next(flow_id, limit - active)
                return None
            # Read the clock after the count: a slot freed by an end is seen only once that
            # end committed, so started_at here is never before the ended_at it replaces.
            won = transitions.claim_pending(execution_id)
            if won:
                _send_next(flow_id, limit - active - 1, after=execution_id)
    if not won:
        return None
    execution = Execution.objects.select_related("user").get(pk=execution_id)
    # Tells the runner to call release() at the end; no query on the unlimited path.
    execution.concurrency_limited = limit is not None  # type: ignore[attr-defined]
    return execution


def release(execution: Execution) -> None:
    """An execution of a limited flow ended: send the oldest waiting ones, one per free slot."""
    if execution.flow_id is None:
        return
    with transaction.atomic():
        limit = _locked_limit(execution.flow_id)
        if limit is None:
            return
        _send_next(execution.flow_id, limit - _active(execution.flow_id))
