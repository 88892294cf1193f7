"""Schedules: fire times, the beat rows that drive them, and what one firing does.

This module is the only code that writes django-celery-beat's `PeriodicTask` rows. Each
`Schedule` owns exactly one, kept in step by `sync` (called from `Schedule.save`, and from
the schedule queryset's bulk `update`/`delete`), and its crontab, interval or clocked row
is deleted only when no other periodic task still uses it.

Fire times are computed here, not by celery's schedule classes:
- cron runs in the schedule's time zone on wall-clock time; a time that does not exist on
  the spring-forward day (02:30 in Europe/Vienna) fires at the same offset after the
  change (03:30 summer time), a time that happens twice in autumn fires once, the first
  time;
- intervals count from `start_at` (or from creation): fire time k is `first + k * interval`,
  whenever beat happens to wake, so they do not drift;
- `at` fires once, after which the schedule disables itself.

`BeatScheduler` (settings.CELERY_BEAT_SCHEDULER) asks these functions when each schedule is
due and hands the exact fire time to the task; `fire` records one SCHEDULE execution per
(schedule, fire time), which a unique constraint makes impossible to start twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from celery import schedules as celery_schedules
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from .models import Execution, Schedule

log = logging.getLogger(__name__)
FIRE_TASK = "executions.fire_schedule"


class ScheduleError(Exception):
    """A firing cannot start its flow; the message says why."""


def _misfire_grace() -> timedelta:
    """How late beat may fire a fire time and still have it count (then it is skipped)."""
    return timedelta(seconds=float(settings.AUTOMATION.get("SCHEDULE_MISFIRE_SECONDS", 300)))


# --- fire times ----------------------------------------------------------------------------
def _to_utc(naive_local: datetime, tz: ZoneInfo) -> datetime:
    # fold=0: an ambiguous wall time is its first occurrence; a wall time inside the
    # spring-forward gap is read with the offset before the change, i.e. it lands after it.
    return naive_local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _cron_next(expression: str, tz: ZoneInfo, after: datetime) -> datetime:
    from croniter import croniter

    after = after.astimezone(UTC)
    # Iterate wall-clock times: each wall time once, so DST days neither skip nor repeat.
    start = after.astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)
    it = croniter(expression, start)
    for _ in range(100_000):
        candidate = _to_utc(it.get_next(datetime), tz)
        if candidate > after:
            return candidate
    raise ScheduleError(f"cron {expression!r} has no fire time after {after.isoformat()}")


def _cron_prev(expression: str, tz: ZoneInfo, moment: datetime) -> datetime | None:
    from croniter import croniter

    moment = moment.astimezone(UTC)
    start = moment.astimezone(tz).replace(tzinfo=None) + timedelta(hours=3)
    it = croniter(expression, start)
    for _ in range(100_000):
        candidate = _to_utc(it.get_prev(datetime), tz)
        if candidate <= moment:
            return candidate
    return None


def _first_interval_time(schedule: Schedule) -> datetime:
    assert schedule.interval_seconds
    if schedule.start_at is not None:
        return schedule.start_at
    return schedule.created_at + timedelta(seconds=schedule.interval_seconds)


def next_fire_after(schedule: Schedule, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`, within start_at/end_at; None if none."""
    if schedule.start_at is not None and after < schedule.start_at:
        after = schedule.start_at - timedelta(microseconds=1)
    found: datetime | None
    if schedule.cron:
        found = _cron_next(schedule.cron, ZoneInfo(schedule.timezone), after)
    elif schedule.interval_seconds:
        first = _first_interval_time(schedule)
        if after < first:
            found = first
        else:
            step = schedule.interval_seconds
            k = int((after - first).total_seconds() // step) + 1
            found = first + timedelta(seconds=k * step)
    else:
        found = schedule.at if schedule.at is not None and schedule.at > after else None
    if found is not None and schedule.end_at is not None and found > schedule.end_at:
        return None
    return found


def latest_fire_at_or_before(schedule: Schedule, moment: datetime) -> datetime | None:
    """The last fire time at or before `moment`, within start_at/end_at; None if none."""
    if schedule.end_at is not None and moment > schedule.end_at:
        moment = schedule.end_at
    found: datetime | None
    if schedule.cron:
        found = _cron_prev(schedule.cron, ZoneInfo(schedule.timezone), moment)
    elif schedule.interval_seconds:
        first = _first_interval_time(schedule)
        if moment < first:
            return None
        k = int((moment - first).total_seconds() // schedule.interval_seconds)
        found = first + timedelta(seconds=k * schedule.interval_seconds)
    else:
        found = schedule.at if schedule.at is not None and schedule.at <= moment else None
    if found is not None and schedule.start_at is not None and found < schedule.start_at:
        return None
    return found


def fire_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `after` (fewer if the schedule ends)."""
    times: list[datetime] = []
    moment = after
    while len(times) < count:
        found = next_fire_after(schedule, moment)
        if found is None:
            break
        times.append(found)
        moment = found
    return times


def _upcoming(schedule: Schedule) -> datetime | None:
    if not schedule.enabled:
        return None
    after = max(filter(None, [timezone.now(), schedule.last_fired_at]))
    if schedule.at is not None and schedule.last_fired_at is not None:
        return None  # a one-off that fired
    return next_fire_after(schedule, after)


# --- the beat rows -------------------------------------------------------------------------
def _task_name(schedule: Schedule) -> str:
    return f"automation schedule {schedule.pk}: {schedule.name}"[:200]


def _timing_rows(schedule: Schedule) -> dict[str, Any]:
    rows: dict[str, Any] = {"crontab": None, "interval": None, "clocked": None, "solar": None}
    if schedule.cron:
        minute, hour, day_of_month, month_of_year, day_of_week = schedule.cron.split()
        rows["crontab"] = CrontabSchedule.objects.filter(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
            day_of_week=day_of_week, timezone=schedule.timezone,
        ).first() or CrontabSchedule.objects.create(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
            day_of_week=day_of_week, timezone=schedule.timezone,
        )
    elif schedule.interval_seconds:
        every = {"every": schedule.interval_seconds, "period": IntervalSchedule.SECONDS}
        rows["interval"] = (
            IntervalSchedule.objects.filter(**every).first()
            or IntervalSchedule.objects.create(**every)
        )
    else:
        rows["clocked"] = (
            ClockedSchedule.objects.filter(clocked_time=schedule.at).first()
            or ClockedSchedule.objects.create(clocked_time=schedule.at)
        )
    return rows


def _timing_key(task: PeriodicTask) -> tuple[Any, ...]:
    return (task.crontab_id, task.interval_id, task.clocked_id)


def sync(schedule: Schedule) -> PeriodicTask:
    """Create or update the schedule's one PeriodicTask so that beat sees it as it is now."""
    task = schedule.periodic_task
    if task is None and schedule.periodic_task_id:
        task = PeriodicTask.objects.filter(pk=schedule.periodic_task_id).first()
    old_rows = (task.crontab_id, task.interval_id, task.clocked_id) if task else (None,) * 3
    old_key = _timing_key(task) if task else None
    was_enabled = task.enabled if task else False
    if task is None:
        task = PeriodicTask(task=FIRE_TASK)
    for field, row in _timing_rows(schedule).items():
        setattr(task, field, row)
    task.name = _task_name(schedule)
    task.task = FIRE_TASK
    task.args = "[]"
    task.kwargs = f'{{"schedule_id": {schedule.pk}}}'
    task.enabled = schedule.enabled
    task.one_off = schedule.at is not None
    # start_at/end_at are enforced by our fire times. Not copied to start_time/expires:
    # ModelEntry would then count from 30 years back and catch up on a past fire time.
    task.start_time = None
    task.expires = None
    task.description = f"Fires schedule {schedule.name!r} (written by executions.schedules)"
    if old_key != _timing_key(task) or (schedule.enabled and not was_enabled):
        # New timing, or enabled again: count from now, do not catch up on the past.
        task.last_run_at = None
    task.no_changes = False  # PeriodicTask.save then tells beat that something changed
    task.save()
    if schedule.periodic_task_id != task.pk:
        Schedule.objects.filter(pk=schedule.pk).update(periodic_task=task)
        schedule.periodic_task = task
    _delete_unused_timing(
        [(model, pk) for model, pk in zip(_TIMING_MODELS, old_rows, strict=True) if pk]
    )
    schedule.next_fire_at = _upcoming(schedule)
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=schedule.next_fire_at)
    return task


_TIMING_MODELS = (CrontabSchedule, IntervalSchedule, ClockedSchedule)
_TIMING_FIELDS = {CrontabSchedule: "crontab", IntervalSchedule: "interval", ClockedSchedule: "clocked"}


def _delete_unused_timing(rows: Iterable[tuple[Any, int]]) -> None:
    """Delete crontab/interval/clocked rows that no periodic task uses any more."""
    for model, pk in rows:
        if not PeriodicTask.objects.filter(**{f"{_TIMING_FIELDS[model]}_id": pk}).exists():
            model.objects.filter(pk=pk).delete()


def sync_many(schedule_ids: Iterable[int]) -> None:
    """Bring the beat rows of many schedules in step after a bulk change."""
    with transaction.atomic():
        for schedule in Schedule.objects.filter(pk__in=list(schedule_ids)).select_related(
            "periodic_task"
        ):
            sync(schedule)
        PeriodicTasks.update_changed()


def delete_periodic_tasks(task_ids: Iterable[int]) -> None:
    """Delete the beat rows of deleted schedules, and their timing rows if now unused."""
    task_ids = [pk for pk in task_ids if pk]
    if not task_ids:
        return
    tasks = list(PeriodicTask.objects.filter(pk__in=task_ids))
    timing = [
        (model, pk)
        for task in tasks
        for model, pk in zip(
            _TIMING_MODELS, (task.crontab_id, task.interval_id, task.clocked_id), strict=True
        )
        if pk
    ]
    PeriodicTask.objects.filter(pk__in=task_ids).delete()
    _delete_unused_timing(timing)
    PeriodicTasks.update_changed()  # a queryset delete sends no per-row signal to beat


def set_enabled(schedules: Any, enabled: bool) -> int:
    """Enable or disable many schedules at once (admin action, API); beat follows."""
    return int(schedules.update(enabled=enabled))


# --- firing --------------------------------------------------------------------------------
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
    from . import services

    schedule = Schedule.objects.select_related("flow").filter(pk=schedule_id).first()
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
            execution = services.start_execution(
                type=Execution.Type.SCHEDULE,
                schedule=schedule,
                scheduled_for=moment,
                mode=schedule.mode,
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
        schedule.next_fire_at = _upcoming(schedule)
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
    from flow_api.exceptions import ExecutionTerminated

    from . import runner, services

    schedule = (
        Schedule.objects.select_related("flow").filter(pk=execution.schedule_id or 0).first()
    )
    if schedule is None:
        raise ScheduleError(f"schedule {execution.trigger_ref!r} was deleted")
    if schedule.flow is None:
        raise ScheduleError(f"schedule {schedule.name!r} has no flow: its flow was deleted")
    scheduled_at = (execution.scheduled_for or execution.created_at).isoformat()

    # Resumed after its flow parked a wait (executions.parking): that flow goes on.
    child = Execution.objects.filter(parent=execution).first() if execution.resumes else None
    if child is None:
        if execution.scheduled_for and execution.started_at:
            from . import metrics  # metrics reads the models this module defines

            metrics.observe_schedule_lag(
                (execution.started_at - execution.scheduled_for).total_seconds()
            )
        skipped = _apply_overlap(schedule, execution, scheduled_at)
        if skipped is not None:
            return skipped
        try:
            child = services.start_execution(
                flow=schedule.flow,
                parent=execution,
                input_value={**(schedule.input_value or {}), "scheduled_at": scheduled_at},
                claim_if_served=True,
            )
        except services.StartError as exc:
            raise ScheduleError(f"schedule {schedule.name!r}: {exc.message}") from None
        Execution.objects.filter(pk=execution.pk).update(
            output_value={"execution": child.pk, "scheduled_at": scheduled_at}
        )
    if child.status == Execution.Status.RUNNING and not execution.resumes:
        runner.execute(child)  # claimed for us at creation: run it here
    elif child.status not in Execution.ENDED:
        services.wait_for([child.pk], waiter=execution, run_inline=True)
    from .guard import guard

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


def _apply_overlap(
    schedule: Schedule, execution: Execution, scheduled_at: str
) -> dict[str, Any] | None:
    """The schedule's overlap policy against its earlier unfinished firings; the output of
    a skipped firing, or None to go on."""
    from . import services

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
            services.cancel_execution(pk, f"cancelled: schedule {schedule.name!r} fired again")
    return None


# --- beat ----------------------------------------------------------------------------------
class ScheduleEntry(ModelEntry):
    """A beat entry that asks our fire-time functions when a schedule is due, and hands
    the exact fire time to the task. Other periodic tasks behave as in django-celery-beat."""

    kwargs: dict[str, Any]

    def __init__(self, model: PeriodicTask, app: Any = None) -> None:
        super().__init__(model, app=app)
        self.spec: Schedule | None = None
        self.due_at: datetime | None = None
        if model.task == FIRE_TASK:
            self.spec = Schedule.objects.filter(pk=self.kwargs.get("schedule_id") or 0).first()

    def is_due(self) -> Any:
        if self.spec is None:
            return super().is_due()
        if not self.model.enabled:
            return celery_schedules.schedstate(False, 5.0)
        now = timezone.now()
        reference = _parse_moment(self.last_run_at)
        if self.spec.last_fired_at and self.spec.last_fired_at > reference:
            reference = self.spec.last_fired_at
        due = next_fire_after(self.spec, reference)
        if due is not None and now - due > _misfire_grace():
            # Beat was away: fire the latest missed time if it is recent, never a backlog.
            due = latest_fire_at_or_before(self.spec, now)
            if due is not None and now - due > _misfire_grace():
                due = next_fire_after(self.spec, now)
        if due is None:
            return celery_schedules.schedstate(False, 300.0)
        if due > now:
            return celery_schedules.schedstate(False, (due - now).total_seconds())
        self.due_at = due
        self.kwargs = {**self.kwargs, "scheduled_for": due.isoformat()}
        following = next_fire_after(self.spec, due)
        wait = (following - now).total_seconds() if following else 300.0
        return celery_schedules.schedstate(True, max(wait, 0.0))

    def __next__(self) -> ScheduleEntry:
        if self.spec is None:
            return super().__next__()  # type: ignore[no-any-return]
        # The fire time, not "now": the next one is computed from the schedule, no drift.
        self.model.last_run_at = self.due_at or timezone.now()
        self.model.total_run_count += 1
        self.model.no_changes = True
        return self.__class__(self.model, app=self.app)


class BeatScheduler(DatabaseScheduler):
    """django-celery-beat's DatabaseScheduler with exact fire times for our schedules."""

    Entry = ScheduleEntry
