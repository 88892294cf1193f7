"""What one firing does: `fire` records one SCHEDULE execution per (schedule, fire time),
which a unique constraint makes impossible to start twice; `run` (the runner's builtin for
SCHEDULE executions) starts the schedule's flow as its child and waits for it.

A firing runs as the schedule's owner (its child inherits the user), with the owner's rights
when it runs: one whose owner was deactivated or may no longer start the schedule's mode ends
in error saying so. A schedule without an owner (made before owners, or by a command) fires
without a user.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from flow_api.exceptions import ExecutionTerminated

from ..engine import metrics, runner
from ..engine.ending import cancel_execution
from ..engine.guard import guard
from ..engine.start import StartError, start_execution
from ..engine.waiting import wait_for
from ..models import Execution, Schedule
from ..permissions import owner_refusal
from .times import ScheduleError, latest_fire_at_or_before, next_fire_at

log = logging.getLogger(__name__)


def _parse_moment(value: datetime | str) -> datetime:
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is None:
        raise ValueError(f"not a date and time: {value!r}")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment.astimezone(UTC)


def fire(
    schedule_id: int, scheduled_for: datetime | str | None = None, *, manual: bool = False
) -> Execution | None:
    """Record one firing: a SCHEDULE execution for (schedule, fire time), at most once.

    Without `scheduled_for` the fire time is the latest one due now (what a plain
    DatabaseScheduler gives us). Returns the new execution, or None when there was nothing
    to fire (disabled, outside its bounds, or that fire time was started already).
    """
    schedule = Schedule.objects.select_related("flow", "owner").filter(pk=schedule_id).first()
    if schedule is None:
        log.warning("schedule %s fired but no longer exists", schedule_id)
        return None
    now = timezone.now()
    if manual:
        moment = now
    else:
        if not schedule.enabled:
            return None
        if scheduled_for is not None:
            moment = _parse_moment(scheduled_for)
        else:
            found = latest_fire_at_or_before(schedule, now + timedelta(seconds=1))
            if found is None:
                return None
            moment = found
        if (schedule.start_at and moment < schedule.start_at) or (
            schedule.end_at and moment > schedule.end_at
        ):
            return None
    try:
        with transaction.atomic():
            execution = start_execution(
                type=Execution.Type.SCHEDULE,
                schedule=schedule,
                scheduled_for=moment,
                mode=schedule.mode,
                user=schedule.owner,
                trigger=Execution.Trigger.SCHEDULE,
                trigger_ref=schedule.name,
            )
    except IntegrityError:
        log.info("schedule %r: fire time %s was started already", schedule.name, moment)
        return None
    changes: dict[str, Any] = {}
    if not manual and (schedule.last_fired_at is None or moment > schedule.last_fired_at):
        changes["last_fired_at"] = schedule.last_fired_at = moment
    if changes:
        schedule.next_fire_at = next_fire_at(schedule)
        Schedule.objects.filter(pk=schedule.pk).update(
            **changes, next_fire_at=schedule.next_fire_at
        )
    if schedule.at is not None and not manual and schedule.enabled:
        schedule.enabled = False  # a one-off: fired once, now it rests
        schedule.save(update_fields=["enabled", "updated_at"])
    return execution


def run(execution: Execution) -> dict[str, Any]:
    """Carry out a SCHEDULE execution (called by the runner): start the schedule's flow as
    its child and wait for it, running it inline in this process when this worker serves
    its queue; ends like the flow ended. Applies the schedule's overlap policy first."""
    schedule = (
        Schedule.objects.select_related("flow", "owner")
        .filter(pk=execution.schedule_id or 0).first()
    )
    if schedule is None:
        raise ScheduleError(f"schedule {execution.trigger_ref!r} was deleted")
    if schedule.flow is None:
        raise ScheduleError(f"schedule {schedule.name!r} has no flow: its flow was deleted")
    scheduled_at = (execution.scheduled_for or execution.created_at).isoformat()

    # Resumed after its flow parked a wait (executions.engine.parking): that flow goes on.
    child = Execution.objects.filter(parent=execution).first() if execution.resumes else None
    if child is None:
        if execution.scheduled_for and execution.started_at:
            metrics.observe_schedule_lag(
                (execution.started_at - execution.scheduled_for).total_seconds()
            )
        reason = orphaned(schedule)
        if reason:  # checked before the overlap policy: it cancels nothing either
            raise ScheduleError(f"schedule {schedule.name!r} is orphaned: {reason}")
        skipped = _apply_overlap(schedule, execution, scheduled_at)
        if skipped is not None:
            return skipped
        try:
            child = start_execution(
                flow=schedule.flow,
                parent=execution,
                input_value={**(schedule.input_value or {}), "scheduled_at": scheduled_at},
                claim_if_served=True,
            )
        except StartError as exc:
            raise ScheduleError(f"schedule {schedule.name!r}: {exc.message}") from None
        Execution.objects.filter(pk=execution.pk).update(
            output_value={"execution": child.pk, "scheduled_at": scheduled_at}
        )
    if child.status == Execution.Status.RUNNING and not execution.resumes:
        runner.execute(child)  # claimed for us at creation: run it here
    elif child.status not in Execution.ENDED:
        wait_for([child.pk], waiter=execution, run_inline=True)
    if guard().any_terminated():
        raise ExecutionTerminated()
    child.refresh_from_db(fields=["status", "message"])
    if child.status != Execution.Status.ENDED_SUCCESS:
        raise ScheduleError(
            f"flow {schedule.flow.name!r} (execution {child.pk}) ended {child.status}: "
            f"{child.message}"
        )
    execution.message = f"flow {schedule.flow.name!r} ran as execution {child.pk}"
    return {"execution": child.pk, "scheduled_at": scheduled_at, "status": child.status}


def orphaned(schedule: Schedule) -> str:
    """Why the schedule's firings may not run on its owner's behalf any more ("" if they
    may, or when it has no owner: such a schedule fires without a user, as before owners)."""
    if schedule.owner is None:
        return ""
    return owner_refusal(schedule.owner, schedule.mode)


def _apply_overlap(
    schedule: Schedule, execution: Execution, scheduled_at: str
) -> dict[str, Any] | None:
    """The schedule's overlap policy against its earlier unfinished firings; the output of
    a skipped firing, or None to go on."""
    earlier = Execution.objects.filter(
        schedule=schedule, type=Execution.Type.SCHEDULE, pk__lt=execution.pk,
        status__in=(Execution.Status.PENDING, *Execution.ACTIVE),
    ).order_by("pk")
    if schedule.overlap == Schedule.Overlap.SKIP:
        still = earlier.values_list("pk", flat=True).first()
        if still is not None:
            execution.message = f"skipped: the firing in execution {still} still runs"
            return {"skipped": True, "running": still, "scheduled_at": scheduled_at}
    elif schedule.overlap == Schedule.Overlap.CANCEL_PREVIOUS:
        for pk in earlier.values_list("pk", flat=True):
            cancel_execution(pk, f"cancelled: schedule {schedule.name!r} fired again")
    return None
