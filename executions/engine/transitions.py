"""Every write of `Execution.status`: the one place that moves an execution between states.

Every end is counted here too (executions.engine.metrics), once its transaction commits.

Each function is one conditional UPDATE (`... WHERE status IN (allowed)`), so concurrent
callers (two workers, a cancel and an end, a resume and a park) have exactly one winner;
each returns whether it won.

    from                      to                 function (caller)
    ------------------------  -----------------  ----------------------------------------------
    (new row)                 PENDING / RUNNING  insert (start.start_execution; RUNNING: claimed
                                                   inline)
    PENDING (deferred)        PENDING / RUNNING  start_deferred (start.run_deferred)
    PENDING                   RUNNING            claim (not limited), claim_pending (limits)
    RUNNING                   WAITING            mark_waiting (waiting for children, a form)
    WAITING                   RUNNING            mark_running (unless parked/resumed since;
                                                   a PAUSED one stays PAUSED, its wait over)
    RUNNING, WAITING          PAUSED             pause (ending.pause_execution: API, flow;
                                                   not a parked one)
    PAUSED                    RUNNING            unpause (ending.resume_execution)
    RUNNING, WAITING          WAITING parked     park (parking: no process holds the wait)
    WAITING parked            PENDING            unpark (parking.resume: sent again)
    PENDING, RUNNING,         ENDED_*            mark_ended (one row: the runner, a task),
      WAITING, PAUSED                            close (many rows: timeout, lost, shutdown)
    PENDING, WAITING parked   ENDED_*            request_stop (cancel, timeout: no process
                                                   runs its code, so it ends at once)
    RUNNING, WAITING, PAUSED  (stop_status set)  request_stop (a process runs its code: it
                                                   ends so once that code stopped, by
                                                   mark_ended or end_as_requested)

Once a stop was asked (`stop_status`), every end is the one asked: the runner's outcome,
a close by the reconciler or the shutdown, and no park or retry takes it away.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import F, Field, Q
from django.utils import timezone

from ..models import Execution, Message
from . import metrics, rows

Status = Execution.Status
NOT_ENDED = (Status.PENDING, Status.RUNNING, Status.WAITING, Status.PAUSED)
HELD = (Status.RUNNING, Status.WAITING, Status.PAUSED)  # a process runs it, unless parked


def _transition(execution: Execution, allowed: tuple[str, ...], **changes: Any) -> bool:
    updated = Execution.objects.filter(pk=execution.pk, status__in=allowed).update(**changes)
    if updated:
        for field, value in changes.items():
            if not hasattr(value, "resolve_expression"):
                setattr(execution, field, value)
    return bool(updated)


def mark_waiting(execution: Execution, message: Any = None) -> bool:
    """RUNNING -> WAITING (for a message form's answer, if `message` is given)."""
    if message is None:
        return _transition(execution, (Status.RUNNING,), status=Status.WAITING)
    return _transition(
        execution, (Status.RUNNING,), status=Status.WAITING, waiting_message=message
    )


def mark_running(execution: Execution) -> bool:
    """WAITING -> RUNNING, unless it was parked and resumed elsewhere since. One paused
    while it waited stays PAUSED (its wait is over; it holds at its next flow_api call)."""
    this_run = Execution.objects.filter(pk=execution.pk, parked=False, resumes=execution.resumes)
    updated = this_run.filter(status=Status.WAITING).update(
        status=Status.RUNNING, waiting_message=None, wake_at=None
    )
    if updated:
        execution.status, execution.waiting_message, execution.wake_at = Status.RUNNING, None, None
        return True
    if this_run.filter(status=Status.PAUSED).update(waiting_message=None, wake_at=None):
        execution.status, execution.waiting_message, execution.wake_at = Status.PAUSED, None, None
        return True
    return False


def pause(execution: Execution) -> bool:
    """RUNNING or WAITING -> PAUSED, while a process runs it (a parked wait holds none, and
    only its answer may resume it)."""
    updated = Execution.objects.filter(
        pk=execution.pk, status__in=(Status.RUNNING, Status.WAITING), parked=False
    ).update(status=Status.PAUSED)
    if updated:
        execution.status = Status.PAUSED
    return bool(updated)


def unpause(execution: Execution) -> bool:
    """PAUSED -> RUNNING."""
    return _transition(execution, (Status.PAUSED,), status=Status.RUNNING)


def mark_ended(
    execution: Execution, status: str, message: str = "", output_value: dict[str, Any] | None = None
) -> bool:
    """Any non-ended state -> an ENDED_* state; False if it had already ended. One asked to
    stop ends as asked instead (its message stays the stop's; `execution.status` says)."""
    if status not in Execution.ENDED:
        raise ValueError(f"{status} is not an end state")
    changes: dict[str, Any] = {"status": status, "message": message, "ended_at": timezone.now()}
    if output_value is not None:
        changes["output_value"] = output_value
    # Every execution ends here once: one statement written out, as the claim is, since
    # building it through the ORM took longer than PostgreSQL takes to run it.
    fields = [cast(Field, Execution._meta.get_field(name)) for name in changes]
    table = connection.ops.quote_name(Execution._meta.db_table)
    sets = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {sets} WHERE id = %s AND status IN ({', '.join(['%s'] * len(NOT_ENDED))})"
            " AND stop_status = ''",
            [*(f.get_db_prep_save(changes[f.name], connection) for f in fields), execution.pk, *NOT_ENDED],
        )
        won = cursor.rowcount == 1
    if not won:
        return end_as_requested(execution)
    for field, value in changes.items():
        setattr(execution, field, value)
    metrics.count_ended([(execution.type, status, execution.started_at)])
    return True


def end_as_requested(execution: Execution) -> bool:
    """RUNNING, WAITING or PAUSED asked to stop -> the end asked (its code has stopped);
    False if no stop was asked or it has ended."""
    won = bool(
        Execution.objects.filter(pk=execution.pk, status__in=NOT_ENDED)
        .exclude(stop_status="")
        .update(status=F("stop_status"), ended_at=timezone.now(), parked=False)
    )
    if won:
        execution.refresh_from_db(fields=["status", "message", "ended_at", "parked"])
        metrics.count_ended([(execution.type, execution.status, execution.started_at)])
        _forget_forms([execution.pk])
    return won


def request_stop(ids: Iterable[int], status: str, message: str) -> tuple[list[tuple[int, str]], list[int]]:
    """Stop those of `ids` that have not ended, to end `status` with `message`: the ones no
    process runs (PENDING, parked) end now; the others are asked to stop (`stop_status`)
    and end so once their code has stopped (the caller tells their processes).
    Returns (the (id, status) ended now, the ids asked to stop)."""
    ids = list(ids)
    if not ids:
        return [], []
    with transaction.atomic():
        # PostgreSQL: a claim, park or resume racing this waits for it. SQLite has no row
        # locks: the unheld are closed again after the ask, for those parked in between.
        list(Execution.objects.select_for_update().filter(pk__in=ids, status__in=NOT_ENDED).values_list("pk"))
        unheld = Q(status=Status.PENDING) | Q(status=Status.WAITING, parked=True)
        ended = close(Execution.objects.filter(unheld, pk__in=ids).values_list("pk", flat=True), status, message)
        held = Execution.objects.filter(pk__in=ids, status__in=HELD, parked=False, stop_status="")
        asked = list(held.values_list("pk", flat=True))
        held.update(stop_status=status, stop_requested_at=timezone.now(), message=message)
        ended += close(Execution.objects.filter(unheld, pk__in=ids).values_list("pk", flat=True), status, message)
    return ended, [pk for pk in asked if pk not in {pk for pk, _ in ended}]


def insert(row: dict[str, Any]) -> Execution:
    """A new execution (PENDING, or RUNNING when claimed inline): one INSERT written out,
    as the claim and the end are, since `Model.save` spent longer building the statement
    than PostgreSQL takes to run it (a fifth of every start)."""
    execution = Execution(**row)
    fields = [f for f in Execution._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(execution, True), connection) for f in fields]
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(_insert_sql(fields), values)
        execution.pk = cursor.fetchone()[0]
    execution._state.adding = False
    execution._state.db = connection.alias
    return execution


def _insert_sql(fields: list[Field]) -> str:
    quote = connection.ops.quote_name
    columns = [f.column for f in fields]
    return (
        f"INSERT INTO {quote(Execution._meta.db_table)} ({', '.join(map(quote, columns))}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) RETURNING {quote('id')}"
    )


def _claim_sql() -> str:
    table = connection.ops.quote_name(Execution._meta.db_table)
    return (
        # COALESCE: a resumed execution (executions.engine.parking) keeps its first start.
        f"UPDATE {table} SET status = %s, started_at = COALESCE(started_at, %s), heartbeat_at = %s "
        f"WHERE id = %s AND status = %s AND NOT deferred AND NOT limited RETURNING {rows.EXECUTION.columns()}"
    )


def claim(execution_id: int) -> Execution | None:
    """PENDING -> RUNNING of an execution no concurrency limit holds, in one statement: a
    conditional UPDATE that returns the claimed row (`RETURNING`: PostgreSQL, and SQLite
    from 3.35). None when it missed (another caller won, or a limit holds it)."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), [Status.RUNNING, now, now, execution_id, Status.PENDING])
        claimed = rows.EXECUTION.instances(cursor.fetchall())
    return claimed[0] if claimed else None


def claim_pending(execution_id: int) -> bool:
    """PENDING -> RUNNING of a limited flow's execution (its flow's row lock is held)."""
    now = timezone.now()
    return bool(
        Execution.objects.filter(pk=execution_id, status=Status.PENDING, deferred=False).update(
            status=Status.RUNNING, started_at=now, heartbeat_at=now
        )
    )


def start_deferred(execution: Execution, *, claimed: bool) -> bool:
    """A deferred PENDING execution is no longer deferred (and RUNNING if `claimed`)."""
    changes: dict[str, Any] = {"deferred": False}
    if claimed:
        now = timezone.now()
        changes.update(status=Status.RUNNING, started_at=now, heartbeat_at=now)
    if not Execution.objects.filter(pk=execution.pk, deferred=True, status=Status.PENDING).update(
        **changes
    ):
        return False  # already started (or cancelled)
    for key, value in changes.items():
        setattr(execution, key, value)
    return True


def start_deferred_many(root_id: int, ids: list[int]) -> list[Execution]:
    """Of `ids`, the deferred PENDING executions of the tree `root_id` are no longer
    deferred; returns them (with what dispatching needs). Call in a transaction."""
    rows = list(
        Execution.objects.select_for_update()
        .filter(pk__in=ids, root_id=root_id, deferred=True, status=Status.PENDING)
        .only("id", "name", "type", "mode", "queue", "priority", "limited")
    )
    Execution.objects.filter(pk__in=[row.pk for row in rows]).update(deferred=False)
    return rows


def close(ids: Iterable[int], status: str, message: str) -> list[tuple[int, str]]:
    """End those of `ids` that have not ended yet (database only); returns (id, status)."""
    ids = list(ids)
    if not ids:
        return []
    rows = list(
        Execution.objects.filter(pk__in=ids, status__in=NOT_ENDED).values_list(
            "pk", "type", "started_at", "stop_status"
        )
    )
    still_open = [pk for pk, _, _, _ in rows]
    now = timezone.now()
    not_ended = Execution.objects.filter(pk__in=still_open, status__in=NOT_ENDED)
    not_ended.filter(stop_status="").update(status=status, message=message, ended_at=now, parked=False)
    # Asked to stop before: it ends as it was asked (a cancel stays a cancel).
    not_ended.exclude(stop_status="").update(status=F("stop_status"), ended_at=now, parked=False)
    ended = [(pk, stop or status) for pk, _, _, stop in rows]
    metrics.count_ended((type_, stop or status, started) for _, type_, started, stop in rows)
    _forget_forms(still_open)
    return ended


def _forget_forms(ids: list[int]) -> None:
    """Executions ended from outside their run, or stopped: their forms nobody waits for any
    more expire (the process of a running wait expires its own; a parked wait has none), and
    their password answers are erased (a runner erases those its handler had read)."""
    Message.objects.filter(execution_id__in=ids, status=Message.Status.OPEN).update(
        status=Message.Status.EXPIRED
    )
    Message.objects.filter(execution_id__in=ids, status=Message.Status.ANSWERED).update(
        secret_response={}
    )


def park(execution: Execution) -> bool:
    """RUNNING or WAITING -> WAITING parked, unless it was resumed elsewhere or ended."""
    return bool(
        Execution.objects.filter(
            pk=execution.pk, status__in=(Status.RUNNING, Status.WAITING), parked=False,
            resumes=execution.resumes, stop_status="",  # asked to stop: it ends instead
        ).update(status=Status.WAITING, parked=True, heartbeat_at=None)
    )


def unpark(
    execution_id: int, *, waiting_for_children: bool = False, message_id: int | None = None,
    due_timer: bool = False,
) -> bool:
    """WAITING parked -> PENDING (counted in `resumes`); exactly one caller wins.

    `waiting_for_children`: only if it is parked for a child; `message_id`: only if it is
    parked for that message; `due_timer`: only if it is parked in a sleep that is due.
    """
    parked = Execution.objects.filter(pk=execution_id, status=Status.WAITING, parked=True)
    if waiting_for_children:
        parked = parked.filter(waiting_message__isnull=True, wake_at__isnull=True)
    if message_id is not None:
        parked = parked.filter(waiting_message_id=message_id)
    if due_timer:
        parked = parked.filter(wake_at__lte=timezone.now())
    return bool(
        parked.update(
            status=Status.PENDING, parked=False, waiting_message=None, wake_at=None,
            resumes=F("resumes") + 1,
            heartbeat_at=timezone.now(),  # the reconciler re-sends from here if the message is lost
        )
    )
