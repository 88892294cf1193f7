"""Waiting without a polling loop: one wake-and-poll primitive, for children and for forms.

A waiter subscribes to the Redis channels of what it waits for (`Wakeup`), re-reads the rows
when a notice arrives, and at least every safety-poll interval (a notice only wakes early;
the row decides, so a lost notice costs one interval, never a wrong answer). With Redis away
it falls back to polling the rows. `wait_for` (children, the API's wait, a synchronous
webhook) and the message forms' wait (executions.messages) are both built on it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection

from flow_api.exceptions import ExecutionParked

from ..models import Execution
from . import notify, rows, runner
from .guard import guard
from .queues import serves
from .start import claim
from .transitions import mark_running, mark_waiting
from .workers_status import unserved_reason

Status = Execution.Status


def safety_poll_seconds() -> float:
    """The longest a waiter goes without re-reading its rows."""
    return float(settings.AUTOMATION["SAFETY_POLL_SECONDS"])


def release_pooled_connection() -> None:
    """A web process takes its connections from a bounded pool (automation/settings.py):
    a request that waits gives its connection back while it sleeps on Redis, so that
    waiting requests never use up the pool. (Elsewhere there is no pool: nothing to do.)"""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


class Wakeup:
    """Notices on some Redis channels, one borrowed pub/sub connection (`close` gives it back).

    Subscribe confirmations are delivered too (see notify.borrow_pubsub): users skip every
    message that is not a "message" on a channel they wait for.
    """

    def __init__(self, channels: Iterable[str]) -> None:
        self.pubsub = notify.borrow_pubsub()
        self.healthy = True
        try:
            self.pubsub.subscribe(*channels)
        except Exception:  # without Redis the safety poll still works
            self.healthy = False
        except BaseException:  # interrupted (a cancel): its state is unknown
            self.close(healthy=False)
            raise

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next message within `timeout` seconds, None when quiet (or Redis is away: then
        after a short sleep, so that the caller re-reads its rows). A cancel or a timeout of
        the running execution interrupts the wait."""
        release_pooled_connection()
        try:
            with guard().interruptible():
                return self.pubsub.get_message(timeout=timeout)  # type: ignore[no-any-return]
        except Exception:
            self.healthy = False
            with guard().interruptible():
                time.sleep(min(timeout, 0.5))  # Redis down: fall back to polling the rows
            return None
        except BaseException:  # interrupted mid-read: the connection's state is unknown
            self.healthy = False
            raise

    def close(self, *, healthy: bool = True) -> None:
        notify.give_back(self.pubsub, healthy=self.healthy and healthy)


def _satisfied(return_when: str, total: int, statuses: dict[int, str]) -> bool:
    ended = len(statuses)
    if return_when == "ALL_ENDED":  # the usual one, checked at every notice: no count
        return ended == total
    ok = sum(1 for s in statuses.values() if s == Status.ENDED_SUCCESS)
    if return_when == "ALL_SUCCEEDED":
        return ok == total or ok < ended
    if return_when == "FIRST_ENDED":
        return ended > 0
    if return_when == "FIRST_SUCCEEDED":
        return ok > 0 or ended == total
    raise ValueError(f"unknown return_when {return_when!r}")


def wait_for(
    ids: list[int],
    *,
    return_when: str = "ALL_ENDED",
    timeout: float | None = None,
    waiter: Execution | None = None,
    run_inline: bool = False,
) -> list[Execution]:
    """Wait until the executions satisfy `return_when` or `timeout` runs out; return them.

    Wakes on Redis notices and re-reads the rows at least every safety-poll interval.
    With `run_inline` (a worker's flow awaiting its children) a child that is still PENDING
    on a queue this worker serves is claimed and run here, in this process.
    A row read once it had ended is returned as read (an ended row does not change); only
    the ones that ended after their last read (a notice, or run inline) are read again.
    """
    poll = safety_poll_seconds()
    deadline = None if timeout is None else time.monotonic() + timeout
    statuses: dict[int, str] = {}
    final: dict[int, Execution] = {}  # rows read when they had already ended
    pending = set(ids)
    waiting_marked = parking_now = False
    park_after = float(settings.AUTOMATION["PARK_AFTER_SECONDS"])
    started = time.monotonic()
    # Subscribed before the first look, unless the children may well run here (then only
    # once it has to block, and it looks again right after: one may have ended meanwhile).
    wakeup = None if run_inline else Wakeup(notify.ended_channel(pk) for pk in pending)
    try:
        while True:
            found = rows.executions(list(pending))
            for row in found:
                if row.status in Execution.ENDED:
                    statuses[row.pk] = row.status
                    final[row.pk] = row
                    pending.discard(row.pk)
            if not pending or _satisfied(return_when, len(ids), statuses):
                break
            if run_inline:
                ran = False
                for row in found:
                    if row.status != Status.PENDING or row.deferred or not serves(row.queue, row.mode):
                        continue
                    # Its row says whether a limit holds it: a miss (the other pool process
                    # took it from its message) then needs no second look.
                    child = claim(row.pk, limited=bool(row.limited))
                    if child is None:
                        continue
                    ran = True
                    statuses[child.pk] = runner.execute(child)
                    pending.discard(child.pk)
                    if _satisfied(return_when, len(ids), statuses):
                        break
                if ran:
                    continue
            if wakeup is None:
                wakeup = Wakeup(notify.ended_channel(pk) for pk in pending)
                continue
            if waiter is not None and not waiting_marked:
                waiting_marked = mark_waiting(waiter)
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                message = wakeup.next(poll if remaining is None else min(poll, remaining))
                if message is None:
                    break  # safety poll: re-read the rows
                if message.get("type") != "message":
                    continue
                pk = int(message["channel"].decode().rsplit(":", 1)[1])
                if pk not in pending:
                    continue  # not one of ours
                statuses[pk] = message["data"].decode()
                pending.discard(pk)
                if not pending or _satisfied(return_when, len(ids), statuses):
                    break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not pending or _satisfied(return_when, len(ids), statuses):
                break
            if waiter is not None and run_inline and deadline is None and (
                (park_after and time.monotonic() - started > park_after)
                or guard().park_requested
            ) and _all_children_of(waiter, pending):
                # A long wait for its own children holds nothing: parked, the parent
                # resumes when one of them ends (parking.resume_parents) and replays.
                parking_now = True
                raise ExecutionParked()
    finally:
        if wakeup is not None:
            wakeup.close()
        if waiting_marked and waiter is not None and not parking_now:
            mark_running(waiter)
    final.update((e.pk, e) for e in rows.executions([pk for pk in dict.fromkeys(ids) if pk not in final]))
    return [final[pk] for pk in ids if pk in final]


def _all_children_of(waiter: Execution, ids: set[int]) -> bool:
    return Execution.objects.filter(pk__in=ids, parent=waiter).count() == len(ids)


# A start awaited on a queue no live worker consumes is told so after this long, rather than
# after its whole wait (a worker may still come: the execution stays PENDING for it).
UNSERVED_WAIT_SECONDS = 3.0


def hold_while_paused(execution_id: int) -> None:
    """Block while the execution is PAUSED, until it is resumed; a cancel, an end or its
    timeout reaches the hold. Its process keeps sending heartbeats meanwhile."""
    g = guard()
    g.paused.discard(execution_id)
    poll = 0.02
    while (status := Execution.objects.values_list("status", flat=True).get(pk=execution_id)) \
            == Execution.Status.PAUSED:
        with g.interruptible():
            time.sleep(poll)
        poll = min(poll * 1.5, safety_poll_seconds())
    current = g.current(execution_id)
    if current is not None:
        current.status = status
    g.raise_if_terminated()


def wait_for_started(execution: Execution, timeout: float) -> tuple[Execution | None, str]:
    """Wait (at most `timeout`) for an execution just started from outside (the API, a
    webhook); return the row as last read (None if gone) and a warning. Should it not have
    ended within UNSERVED_WAIT_SECONDS while no live worker consumes its queue, return then,
    with a warning naming the queue. The workers' reports are read only in that case, so
    the common, quick execution costs nothing more."""
    first = wait_for([execution.pk], timeout=min(timeout, UNSERVED_WAIT_SECONDS))
    if (first and first[0].is_ended) or timeout <= UNSERVED_WAIT_SECONDS:
        return (first[0] if first else None), ""
    reason = unserved_reason(first[0] if first else execution)
    if reason:
        return (first[0] if first else None), (
            f"{reason}: the execution stays PENDING until a worker for that queue starts"
        )
    rest = wait_for([execution.pk], timeout=timeout - UNSERVED_WAIT_SECONDS)
    return (rest[0] if rest else None), ""


def wait_stopped(ids: list[int], timeout: float | None = None) -> bool:
    """Wait until executions asked to stop (a cancel) have ended, bounded: by default the
    cancel grace (after which a flow ignoring its cancel is killed) and 2 s more. Whether
    they all ended."""
    if timeout is None:
        timeout = float(settings.AUTOMATION["CANCEL_GRACE_SECONDS"]) + 2.0
    ids = list(dict.fromkeys(ids))  # callers name the execution and all they cancelled
    rows = wait_for(ids, timeout=timeout) if ids else []
    return all(row.status in Execution.ENDED for row in rows)
