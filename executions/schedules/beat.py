"""The beat rows: the only code that writes django-celery-beat's `PeriodicTask` rows.

Each `Schedule` owns exactly one, kept in step by `sync` (on the model's `schedule_saved`
signal, and `sync_many` on the queryset's bulk `update`; executions.signals connects them),
and its crontab, interval or clocked row is deleted only when no other periodic task still
uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)

from ..models import Schedule
from .times import next_fire_at

FIRE_TASK = "executions.fire_schedule"  # the name of the task in executions/tasks.py


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
    schedule.next_fire_at = next_fire_at(schedule)
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


def on_schedule_saved(sender: Any, schedule: Schedule, **_: Any) -> None:
    sync(schedule)


def on_schedules_changed(sender: Any, ids: list[int], **_: Any) -> None:
    sync_many(ids)


def on_schedule_deleted(sender: Any, task_ids: list[int], **_: Any) -> None:
    delete_periodic_tasks(task_ids)
