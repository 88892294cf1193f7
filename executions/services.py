"""The one way in: every execution is created, started, cancelled and awaited here.

Views, webhooks, admin actions, beat, management commands and a parent's `this.flow`
all call `start_execution`. Nothing else creates executions or sends Celery messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import broker, limits, metrics
from .models import Execution, Flow, Message
from .queues import celery_queue, default_group, serves

log = logging.getLogger(__name__)
Status = Execution.Status
NOT_ENDED = (Status.PENDING, Status.RUNNING, Status.WAITING, Status.PAUSED)


class StartError(ValueError):
    """An execution cannot be started; `field` names the input at fault."""

    def __init__(self, field: str, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.not_found = not_found


def resolve_flow(flow: Flow | str | int) -> Flow:
    if isinstance(flow, Flow):
        return flow
    lookup = Q(name=flow) if isinstance(flow, str) else Q(pk=flow)
    # Not the script: the runner's compile cache keys on (flow id, revision).
    found = (
        Flow.objects.filter(lookup)
        .only("id", "name", "enabled", "queue", "timeout", "revision", "concurrency_limit")
        .first()
    )
    if found is None:
        raise StartError("flow", f"no flow named {flow!r}", not_found=True)
    return found


def start_execution(
    *,
    type: str = Execution.Type.FLOW,
    flow: Flow | str | int | None = None,
    script: str = "",
    connection: str | None = None,
    connector_type: str | None = None,
    input_value: dict[str, Any] | None = None,
    mode: str | None = None,
    name: str | None = None,
    parent: Execution | None = None,
    user: Any = None,
    trigger: str = Execution.Trigger.API,
    trigger_ref: str = "",
    timeout: float | None = None,
    queue: str | None = None,
    priority: str | None = None,
    run: bool = True,
    claim_if_served: bool = False,
    schedule: Any = None,
    scheduled_for: Any = None,
    step: int | None = None,
) -> Execution:
    """Create an execution and queue it once the current transaction commits.

    `run=False` creates it deferred: it waits for `run_deferred`. With `claim_if_served`
    (a parent about to await its child in this worker) a child whose queue this worker
    serves is created already RUNNING and not queued at all: the caller runs it inline,
    which is what keeps synchronous children free of deadlock and cheap. `step` numbers
    a child by its parent's flow_api calls (executions.parking replays them).
    Raises `StartError` naming the field for bad input.
    """
    if type not in Execution.Type.values:
        raise StartError("type", f"unknown type {type!r}; one of {', '.join(Execution.Type.values)}")
    if input_value is None:
        input_value = {}
    if not isinstance(input_value, dict):
        raise StartError("input_value", "input_value must be a JSON object")
    if parent is not None:
        mode, user = parent.mode, parent.user
    mode = mode or Execution.Mode.PRODUCTIVE
    if mode not in Execution.Mode.values:
        raise StartError("mode", f"unknown mode {mode!r}; one of {', '.join(Execution.Mode.values)}")

    flow_obj: Flow | None = None
    prepared: Any = None  # a CONNECTION execution's connectors.services.PreparedCall
    if type == Execution.Type.FLOW:
        if flow is None or flow == "":
            raise StartError("flow", "a FLOW execution needs a flow name")
        flow_obj = resolve_flow(flow)
        if not flow_obj.enabled:
            raise StartError("flow", f"flow {flow_obj.name!r} is disabled")
        name = name or flow_obj.name
        timeout = timeout if timeout is not None else flow_obj.timeout
        queue = queue or flow_obj.queue
    elif type == Execution.Type.CONNECTION:
        # A stored connection by name, or an inline connector type; inline secrets are
        # taken out of input_value here and kept encrypted (connectors.services).
        from connectors.services import prepare

        prepared = prepare(connection, connector_type, input_value)
        input_value = prepared.input_value
        name = name or prepared.name
        queue = queue or prepared.queue
    elif type == Execution.Type.SCHEDULE:
        # One firing of a schedule (executions.schedules.fire); its flow starts as a child
        # when it runs, so a deleted or disabled flow ends this execution with that message.
        if schedule is None or scheduled_for is None:
            raise StartError("schedule", "a SCHEDULE execution needs its schedule and fire time")
        name = name or schedule.name
        flow_obj = schedule.flow
        queue = queue or (flow_obj.queue if flow_obj else "")  # where its flow runs inline
        trigger, trigger_ref = Execution.Trigger.SCHEDULE, schedule.name
    elif type == Execution.Type.SCRIPT:
        if not isinstance(script, str) or not script.strip():
            raise StartError("script", "a SCRIPT execution needs the script's source")
        name = name or "script"
    if timeout is not None and timeout <= 0:
        raise StartError("timeout", "timeout must be a positive number of seconds")
    group = queue or (parent.queue if parent is not None else "") or default_group()
    priority = priority or (parent.priority if parent is not None else Execution.Priority.NORMAL)
    if priority not in Execution.Priority.values:
        raise StartError(
            "priority", f"unknown priority {priority!r}; one of {', '.join(Execution.Priority.values)}"
        )

    # A child of a flow with a concurrency limit is never created claimed: it takes its
    # slot through claim() like any other (executions.limits), inline or on a worker.
    limited = (
        type == Execution.Type.FLOW
        and flow_obj is not None
        and flow_obj.concurrency_limit is not None
    )
    claimed = claim_if_served and run and serves(group, mode) and not limited
    now = timezone.now()
    execution = Execution.objects.create(
        type=type,
        name=name or type.lower(),
        mode=mode,
        input_value=input_value,
        flow=flow_obj,
        flow_revision=flow_obj.revision if flow_obj else None,
        script=script if type == Execution.Type.SCRIPT else "",
        connection=prepared.connection if prepared is not None else None,
        connector_type=prepared.connector_type if prepared is not None else "",
        parent=parent,
        step=step,
        root_id=(parent.root_id or parent.pk) if parent is not None else None,
        trigger=Execution.Trigger.PARENT if parent is not None else trigger,
        trigger_ref=trigger_ref,
        user=user if user is not None and user.is_authenticated else None,
        queue=group,
        priority=priority,
        timeout=timeout,
        deferred=not run,
        limited=limited,
        schedule=schedule if type == Execution.Type.SCHEDULE else None,
        scheduled_for=scheduled_for if type == Execution.Type.SCHEDULE else None,
        status=Status.RUNNING if claimed else Status.PENDING,
        created_at=now,
        started_at=now if claimed else None,
        heartbeat_at=now if claimed else None,
    )
    metrics.count_started(execution.type, execution.mode, execution.trigger)
    if prepared is not None and prepared.secrets:
        from connectors.services import store_secrets

        store_secrets(execution, prepared.secrets)
    if run and not claimed:
        if limited:
            limits.dispatch_if_free(execution)  # else it is sent when a slot frees
        else:
            dispatch(execution)
    return execution


def dispatch(execution: Execution) -> None:
    """Send the execution's Celery message after the current transaction commits."""
    from .tasks import run_execution

    queue = celery_queue(execution.queue, execution.mode)
    pk = execution.pk
    options: dict[str, Any] = {
        "queue": queue,
        "priority": broker.message_priority(execution.priority),
        # What Flower and the worker's log show for the task: the id it takes, and which
        # execution that is (names only, never input values: they may hold secrets).
        "argsrepr": f"({pk},)",
        "kwargsrepr": repr(
            {"name": execution.name, "type": str(execution.type), "mode": str(execution.mode)}
        ),
    }
    transaction.on_commit(lambda: run_execution.apply_async((pk,), **options))


def run_deferred(execution: Execution, *, claim_if_served: bool = False) -> bool:
    """Start an execution created with `run=False`. True when the caller must run it inline."""
    claimed = (
        claim_if_served
        and serves(execution.queue, execution.mode)
        and not execution.limited  # then its slot is taken through claim()
    )
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
    if not claimed:
        dispatch(execution)
    return claimed


def _claim_sql() -> str:
    table = connection.ops.quote_name(Execution._meta.db_table)
    return (
        # COALESCE: a resumed execution (executions.parking) keeps its first start.
        f"UPDATE {table} SET status = %s, started_at = COALESCE(started_at, %s), heartbeat_at = %s "
        "WHERE id = %s AND status = %s AND NOT deferred AND NOT limited RETURNING *"
    )


def claim(execution_id: int) -> Execution | None:
    """PENDING -> RUNNING for exactly one caller; None for everyone else.

    One statement for an execution no concurrency limit holds (`limited` is false): a
    conditional UPDATE that returns the claimed row (`RETURNING`: PostgreSQL, and SQLite
    from 3.35). Its `user` is read lazily, when the port asks for it. A miss (another
    caller won the row, or a limited flow's execution) goes to `limits.claim`.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    claimed = list(
        Execution.objects.raw(
            _claim_sql(), [Status.RUNNING, now, now, execution_id, Status.PENDING]
        )
    )
    if not claimed:
        return limits.claim(execution_id)  # a limited flow's, or another caller won the row
    return claimed[0]


def descendant_ids(execution_id: int) -> list[int]:
    """Ids of all descendants, level by level."""
    found: list[int] = []
    level = [execution_id]
    while level:
        level = list(Execution.objects.filter(parent_id__in=level).values_list("pk", flat=True))
        found.extend(level)
    return found


def _close(ids: Iterable[int], status: str, message: str) -> list[tuple[int, str]]:
    """End those of `ids` that have not ended yet (database only); returns (id, status)."""
    ids = list(ids)
    if not ids:
        return []
    rows = list(
        Execution.objects.filter(pk__in=ids, status__in=NOT_ENDED).values_list(
            "pk", "type", "started_at"
        )
    )
    still_open = [pk for pk, _, _ in rows]
    Execution.objects.filter(pk__in=still_open, status__in=NOT_ENDED).update(
        status=status, message=message, ended_at=timezone.now(), parked=False
    )
    metrics.count_ended((type_, status, started) for _, type_, started in rows)
    # Forms nobody waits for any more (the process of a running wait expires its own;
    # a parked wait has no process).
    Message.objects.filter(execution_id__in=still_open, status=Message.Status.OPEN).update(
        status=Message.Status.EXPIRED
    )
    return [(pk, status) for pk in still_open]


def _announce(ended: list[tuple[int, str]]) -> list[int]:
    """Tell workers to stop running them and waiters that they ended (after commit)."""
    from . import notify

    ids = [pk for pk, _ in ended]

    def publish() -> None:
        notify.publish_cancel(ids)
        for pk, status in ended:
            notify.publish_ended(pk, status)
        from .parking import resume_parents

        try:
            resume_parents(ids)  # a parent parked while awaiting one of them goes on
        except Exception:  # the reconciler's sweep resumes it then
            log.exception("could not resume the parked parents of %s", ids)

    if ids:
        transaction.on_commit(publish)
    return ids


def end_executions(ids: Iterable[int], status: str, message: str) -> list[int]:
    """End those of `ids` that have not ended yet; tell their waiters and workers."""
    return _announce(_close(ids, status, message))


def cancel_execution(execution: Execution | int, message: str = "cancelled") -> list[int]:
    """End an execution and all its descendants ENDED_CANCELLED; returns the ids ended.

    The whole tree ends in one transaction, so whoever hears that the execution ended
    finds its descendants ended too; a worker running one of them is interrupted at once.
    """
    pk = execution if isinstance(execution, int) else execution.pk
    descendants = descendant_ids(pk)
    with transaction.atomic():
        ended = _close([pk], Status.ENDED_CANCELLED, message)
        ended += _close(descendants, Status.ENDED_CANCELLED, f"cancelled with execution {pk}")
    return _announce(ended)


def end_timed_out(execution_id: int, timeout: float) -> list[int]:
    """End an execution ENDED_ERROR for its timeout and cancel its descendants, at once."""
    descendants = descendant_ids(execution_id)
    with transaction.atomic():
        ended = _close([execution_id], Status.ENDED_ERROR, f"timed out after {timeout:g} s")
        if ended:
            ended += _close(
                descendants, Status.ENDED_CANCELLED, f"cancelled: execution {execution_id} timed out"
            )
    return _announce(ended)


def _satisfied(return_when: str, total: int, statuses: dict[int, str]) -> bool:
    ended = len(statuses)
    ok = sum(1 for s in statuses.values() if s == Status.ENDED_SUCCESS)
    if return_when == "ALL_ENDED":
        return ended == total
    if return_when == "ALL_SUCCEEDED":
        return ok == total or ok < ended
    if return_when == "FIRST_ENDED":
        return ended > 0
    if return_when == "FIRST_SUCCEEDED":
        return ok > 0 or ended == total
    raise ValueError(f"unknown return_when {return_when!r}")


def _release_pooled_connection() -> None:
    """A web process takes its connections from a bounded pool (automation/settings.py):
    a request that waits gives its connection back while it sleeps on Redis, so that
    waiting requests never use up the pool."""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


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
    from django.conf import settings

    from . import notify, runner
    from .guard import guard

    poll = float(settings.AUTOMATION["SAFETY_POLL_SECONDS"])
    deadline = None if timeout is None else time.monotonic() + timeout
    statuses: dict[int, str] = {}
    final: dict[int, Execution] = {}  # rows read when they had already ended
    pending = set(ids)
    waiting_marked = False
    # It delivers subscribe confirmations (skipped below rather than ignored by redis-py,
    # which would return None at once and look like the end of a safety-poll interval: a
    # needless re-read of the rows).
    pubsub = notify.borrow_pubsub()
    healthy = True
    try:
        try:
            pubsub.subscribe(*(notify.ended_channel(pk) for pk in pending))
        except Exception:  # without Redis the safety poll still works
            healthy = False
        while True:
            rows = list(Execution.objects.filter(pk__in=pending))
            for row in rows:
                if row.status in Execution.ENDED:
                    statuses[row.pk] = row.status
                    final[row.pk] = row
                    pending.discard(row.pk)
            if not pending or _satisfied(return_when, len(ids), statuses):
                break
            if run_inline:
                ran = False
                for row in rows:
                    if row.status != Status.PENDING or row.deferred:
                        continue
                    if not serves(row.queue, row.mode):
                        continue
                    child = claim(row.pk)
                    if child is None:
                        continue
                    ran = True
                    statuses[child.pk] = runner.execute(child)
                    pending.discard(child.pk)
                    if _satisfied(return_when, len(ids), statuses):
                        break
                if ran:
                    continue
            if waiter is not None and not waiting_marked:
                waiting_marked = waiter.mark_waiting()
            _release_pooled_connection()
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                wait = poll if remaining is None else min(poll, remaining)
                try:
                    with guard().interruptible():
                        message = pubsub.get_message(timeout=wait)
                except Exception:
                    healthy = False
                    time.sleep(min(wait, 0.5))  # Redis down: fall back to polling the rows
                    break
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
    except BaseException:  # e.g. a cancel mid-read: the connection's state is unknown
        healthy = False
        raise
    finally:
        notify.give_back(pubsub, healthy=healthy)
        if waiting_marked and waiter is not None:
            waiter.mark_running()
    again = [pk for pk in ids if pk not in final]
    if again:
        # Keyed by id, so no ORDER BY (the model's default ordering costs compile time).
        final.update((e.pk, e) for e in Execution.objects.filter(pk__in=again).order_by())
    return [final[pk] for pk in ids if pk in final]
