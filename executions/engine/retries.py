"""Retries with backoff: one execution id across its attempts.

A FLOW, SCRIPT or CONNECTION execution whose handler ends in error, under a retry policy
(its flow's `retry_policy`, or the one its call gave) with attempts left and whose error
is one it retries on, does not end: the failed attempt goes into `previous_attempts`, and
the execution is parked (WAITING, `wake_at` = when the next attempt starts) until the
timer loop (engine/timers.py) sends it again. The next attempt runs the handler afresh:
the children and forms of failed attempts stay visible, but are not replayed. A waiting
parent, an API `wait` and a synchronous webhook see only the last attempt's end.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import Execution, ExecutionLog, Message

Status = Execution.Status


def delay_before(policy: dict[str, Any], attempt: int) -> float:
    """Seconds between the end of `attempt` and the start of the next one."""
    seconds = float(policy["initial_delay"]) * float(policy["multiplier"]) ** (attempt - 1)
    return min(float(policy["max_delay"]), seconds)


def retries_on(policy: dict[str, Any], error_types: list[str]) -> bool:
    """Whether an error of these types (an exception's class and its bases, or the
    engine's words: "Timeout", "WorkerLost") is one the policy retries."""
    wanted = policy.get("retry_on") or []
    return not wanted or bool(set(wanted) & set(error_types))


def schedule_retry(execution: Execution, message: str, error_types: list[str], started_at: Any) -> bool:
    """Park a RUNNING `execution` whose attempt failed for its next attempt; False if its
    policy has none left for this error (then it ends as it would have)."""
    policy = execution.retry_policy or {}
    if not policy or execution.attempt >= int(policy.get("max_attempts", 1)):
        return False
    if not retries_on(policy, error_types):
        return False
    now = timezone.now()
    due = now + timedelta(seconds=delay_before(policy, execution.attempt))
    entry = {
        "attempt": execution.attempt, "started_at": started_at.isoformat() if started_at else None,
        "ended_at": now.isoformat(), "status_message": message, "retry_at": due.isoformat(),
        "resumes": execution.resumes + 1,  # the resume that starts the next attempt
    }
    with transaction.atomic():
        moved = Execution.objects.filter(
            pk=execution.pk, status=Status.RUNNING, resumes=execution.resumes, stop_status=""
        ).update(
            status=Status.WAITING, parked=True, wake_at=due, heartbeat_at=None,
            attempt=F("attempt") + 1, previous_attempts=[*execution.previous_attempts, entry],
            output_value={}, message="", sleeps={}, waiting_message=None,
        )
        if not moved:  # cancelled or ended meanwhile: its end stands
            return False
        # The next attempt starts its children and forms anew; these stay visible.
        Execution.objects.filter(parent=execution, step__isnull=False).update(step=None)
        Message.objects.filter(execution=execution, step__isnull=False).update(step=None)
        ExecutionLog.objects.create(
            execution_id=execution.pk, level=ExecutionLog.Level.WARNING,
            text=f"attempt {execution.attempt} of {policy['max_attempts']} failed: {message}; "
            f"attempt {execution.attempt + 1} starts at {due:%Y-%m-%d %H:%M:%S} UTC",
        )
    return True


def replayable(ids: list[int]) -> set[int]:
    """Those of `ids` whose flow recovers by replay (Flow.recovery)."""
    return set(
        Execution.objects.filter(pk__in=ids, flow__recovery="replay").values_list("pk", flat=True)
    )


def hand_over(executions: list[Execution], reason: str, *, after: float = 0.0) -> list[int]:
    """Park running executions whose worker stopped or died, to be replayed on another
    worker `after` seconds from now (by the timer loop); the ids it parked."""
    due = timezone.now() + timedelta(seconds=after)
    parked = []
    for execution in executions:
        if Execution.objects.filter(
            pk=execution.pk, status__in=(Status.RUNNING, Status.WAITING), parked=False,
            resumes=execution.resumes, stop_status="",  # asked to stop: it ends, not replays
        ).update(status=Status.WAITING, parked=True, wake_at=due, heartbeat_at=None):
            ExecutionLog.objects.create(
                execution_id=execution.pk, level=ExecutionLog.Level.WARNING,
                text=f"{reason}: it resumes on another worker, replaying its handler "
                "(recovery: replay)",
            )
            parked.append(execution.pk)
    return parked
