"""The one way in: every execution is created and started here.

Views, webhooks, admin actions, beat, management commands and a parent's `this.flow`
all call `start_execution`. Nothing else creates executions; only executions.engine.dispatch
sends their Celery messages.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.utils import timezone

from connectors.services import PrepareError, prepare, store_secrets

from ..models import Execution, Flow, clean_retry_policy
from . import flow_cache, limits, metrics, rows, transitions
from .dispatch import dispatch
from .queues import default_group, serves

log = logging.getLogger(__name__)
Status = Execution.Status


class StartError(ValueError):
    """An execution cannot be started; `field` names the input at fault."""

    def __init__(self, field: str, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.not_found = not_found


class TreeLimitError(StartError):
    """Starting this child would pass AUTOMATION_MAX_DEPTH or AUTOMATION_MAX_DESCENDANTS."""


def _take_tree_place(parent: Execution, what: str) -> int:
    """The depth of a new child of `parent`, after counting it on its root.

    The depth check costs nothing (the parent's depth is in memory); the descendants are
    counted on the root row, the one count that trees spread over many workers share,
    in blocks (`_count_descendant`). Raises TreeLimitError naming the setting.
    """
    depth = parent.depth + 1
    max_depth = int(settings.AUTOMATION["MAX_DEPTH"])
    if depth > max_depth:
        raise TreeLimitError(
            "flow",
            f"cannot start {what}: it would be {depth} levels below its root execution, "
            f"the limit is AUTOMATION_MAX_DEPTH={max_depth}",
        )
    max_descendants = int(settings.AUTOMATION["MAX_DESCENDANTS"])
    if not _count_descendant(parent.root_id or parent.pk, max_descendants):
        raise TreeLimitError(
            "flow",
            f"cannot start {what}: its root execution {parent.root_id or parent.pk} has started "
            f"{max_descendants} executions below it, the limit is "
            f"AUTOMATION_MAX_DESCENDANTS={max_descendants}",
        )
    return depth


# Descendant places this process has counted on roots and not used yet: {root id: places}.
# A block of them costs one conditional update, so a loop of children does not update its
# root for each; near the limit, one place at a time keeps the limit exact.
_TREE_BLOCK = 20
_places: dict[int, int] = {}
_places_pid = 0


def _count_descendant(root_id: int, max_descendants: int) -> bool:
    global _places, _places_pid
    if _places_pid != os.getpid() or len(_places) > 10_000:  # a fork, or many roots
        _places, _places_pid = {}, os.getpid()
    if _places.get(root_id, 0) > 0:
        _places[root_id] -= 1
        return True
    for block in (_TREE_BLOCK, 1):
        if Execution.objects.filter(
            pk=root_id, descendant_count__lte=max_descendants - block
        ).update(descendant_count=F("descendant_count") + block):
            _places[root_id] = block - 1
            return True
    return False


def resolve_flow(flow: Flow | str | int, *, kept: bool = False) -> Flow:
    """The flow by name or id. `kept`: a worker process may answer from the flows it keeps
    (executions.engine.flow_cache), outside a transaction only."""
    if isinstance(flow, Flow):
        return flow
    if isinstance(flow, bool) or not isinstance(flow, (str, int)):
        raise StartError("flow", f"a flow is named by a string, not {type(flow).__name__}")
    if kept:
        found = flow_cache.get(flow)
        if found is not None:
            return found
    generation = flow_cache.generation()
    matches = rows.FLOW_TO_START.where("name = %s" if isinstance(flow, str) else "id = %s", [flow])
    found = matches[0] if matches else None
    if found is None:
        raise StartError("flow", f"no flow named {flow!r}", not_found=True)
    flow_cache.put(found, generation)
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
    retry_policy: dict[str, Any] | None = None,
    protect_inputs: list[str] | None = None,
    protect_outputs: list[str] | None = None,
    batch: bool = False,
) -> Execution:
    """Create an execution and queue it once the current transaction commits.

    `run=False` creates it deferred: it waits for `run_deferred`. With `claim_if_served`
    (a parent about to await its child in this worker) a child whose queue this worker
    serves is created already RUNNING and not queued at all: the caller runs it inline,
    which is what keeps synchronous children free of deadlock and cheap. `step` numbers
    a child by its parent's flow_api calls (executions.parking replays them).
    `protect_inputs` / `protect_outputs` name the keys of input_value / output_value shown
    masked (`["*"]`: all). With `batch` (a flow host's `run=False` child) the row may be
    written with others later, by `flush_batched` (see there). Raises `StartError` naming
    the field for bad input.
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
    # A child may start from a flow its worker process keeps (flow_cache); one deleted
    # meanwhile fails its INSERT, which outside a transaction leaves nothing to roll back.
    kept = parent is not None and not db_connection.in_atomic_block
    if type == Execution.Type.FLOW:
        if flow is None or flow == "":
            raise StartError("flow", "a FLOW execution needs a flow name")
        flow_obj = resolve_flow(flow, kept=kept)
        if not flow_obj.enabled:
            raise StartError("flow", f"flow {flow_obj.name!r} is disabled")
        name = name or flow_obj.name
        timeout = timeout if timeout is not None else flow_obj.timeout
        queue = queue or flow_obj.queue
    elif type == Execution.Type.CONNECTION:
        # A stored connection by name, or an inline connector type; inline secrets are
        # taken out of input_value here and kept encrypted (connectors.services).
        try:
            prepared = prepare(connection, connector_type, input_value)
        except PrepareError as exc:
            raise StartError(exc.field, exc.message, not_found=exc.not_found) from None
        input_value = prepared.input_value
        name = name or prepared.name
        queue = queue or prepared.queue
    elif type == Execution.Type.SCHEDULE:
        # One firing of a schedule (executions.schedules.firing.fire); its flow starts as a child
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
    if retry_policy is None and type != Execution.Type.SCHEDULE:
        retry_policy = flow_obj.retry_policy if flow_obj is not None else {}
    try:
        retry_policy = clean_retry_policy(retry_policy)
    except ValidationError as exc:
        raise StartError("retry_policy", " ".join(exc.messages)) from None
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
    depth = _take_tree_place(parent, f"{type.lower()} {name!r}") if parent is not None else 0
    now = timezone.now()
    row = dict(
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
        depth=depth,
        trigger=Execution.Trigger.PARENT if parent is not None else trigger,
        trigger_ref=trigger_ref,
        user=user if user is not None and user.is_authenticated else None,
        queue=group,
        priority=priority,
        timeout=timeout,
        retry_policy=retry_policy,
        protect_inputs=_key_list(protect_inputs, "protect_inputs"),
        protect_outputs=_key_list(protect_outputs, "protect_outputs"),
        deferred=not run,
        limited=limited,
        schedule=schedule if type == Execution.Type.SCHEDULE else None,
        scheduled_for=scheduled_for if type == Execution.Type.SCHEDULE else None,
        status=Status.RUNNING if claimed else Status.PENDING,
        created_at=now,
        started_at=now if claimed else None,
        heartbeat_at=now if claimed else None,
    )
    if batch and not run and prepared is None and _batchable():
        execution = Execution(**row)
        execution.pk = _next_id()
        _batched.append(execution)
        if len(_batched) >= _BATCH_MAX:
            flush_batched()
        metrics.count_started(execution.type, execution.mode, execution.trigger)
        return execution
    try:
        execution = transitions.insert(row)
    except IntegrityError:
        if not kept or flow_obj is None or Flow.objects.filter(pk=flow_obj.pk).exists():
            raise
        flow_cache.clear()  # the kept flow was deleted meanwhile
        raise StartError("flow", f"no flow named {flow_obj.name!r}", not_found=True) from None
    metrics.count_started(execution.type, execution.mode, execution.trigger)
    if prepared is not None and prepared.secrets:
        store_secrets(execution, prepared.secrets)
    if run and not claimed:
        if limited:
            limits.dispatch_if_free(execution)  # else it is sent when a slot frees
        else:
            dispatch(execution)
    return execution


# Children created with run=False by a flow host's loop (`this.flow(..., run=False)` a
# thousand times) are written in one INSERT, not one each: their ids come from the table's
# sequence in blocks, the flow gets its records at once, and the rows are written before
# the host's next call of any other kind is served (executions.engine.hosts), before its
# run_async, and when its handler ended (executions.engine.runner). PostgreSQL only (it
# has the sequence); elsewhere each is written at once.
_BATCH_MAX = 500
_ID_BLOCK = 100
_batched: list[Execution] = []
_ids: list[int] = []
_batch_pid = 0


def _batchable() -> bool:
    global _batched, _ids, _batch_pid
    if _batch_pid != os.getpid():  # a fork starts with none of its parent's
        _batched, _ids, _batch_pid = [], [], os.getpid()
    return db_connection.vendor == "postgresql" and not db_connection.in_atomic_block


def _next_id() -> int:
    if not _ids:
        table = Execution._meta.db_table
        with db_connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, _ID_BLOCK],
            )
            _ids.extend(row[0] for row in cursor.fetchall())
    return _ids.pop(0)


def flush_batched() -> None:
    """Write the rows `batch` kept back. Those whose parent was cancelled or ended
    meanwhile (its cancel could not see them) end ENDED_CANCELLED with it."""
    if not _batched or _batch_pid != os.getpid():
        return
    rows = list(_batched)
    _batched.clear()
    Execution.objects.bulk_create(rows)
    parents = {row.parent_id for row in rows}
    stopped = set(
        Execution.objects.filter(pk__in=parents)
        .filter(Q(status__in=Execution.ENDED) | ~Q(stop_status=""))
        .values_list("pk", flat=True)
    )
    if stopped:
        transitions.close(
            [row.pk for row in rows if row.parent_id in stopped], Status.ENDED_CANCELLED,
            "cancelled with its parent",
        )


def _key_list(keys: Any, field: str) -> list[str]:
    if keys is None:
        return []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise StartError(field, f"{field} must be a list of input or output names")
    return keys


def start_deferred_children(root_id: int, ids: list[int]) -> int:
    """`run_async` of many deferred executions of the tree `root_id` (others in `ids`, and
    those started or cancelled already, are left alone): one statement, then one message
    each. Returns how many were started."""
    flush_batched()  # they may be among the rows kept back
    with transaction.atomic():  # the messages go once the rows are committed
        started = transitions.start_deferred_many(root_id, ids)
        for execution in started:
            dispatch(execution)
    return len(started)


def run_deferred(execution: Execution, *, claim_if_served: bool = False) -> bool:
    """Start an execution created with `run=False`. True when the caller must run it inline."""
    claimed = (
        claim_if_served
        and serves(execution.queue, execution.mode)
        and not execution.limited  # then its slot is taken through claim()
    )
    if not transitions.start_deferred(execution, claimed=claimed):
        return False  # already started (or cancelled)
    if not claimed:
        dispatch(execution)
    return claimed


def claim(execution_id: int, *, limited: bool | None = None) -> Execution | None:
    """PENDING -> RUNNING for exactly one caller; None for everyone else.

    One statement for an execution no concurrency limit holds (`limited` is false):
    `transitions.claim`. Its `user` is read lazily, when the port asks for it. A miss
    (another caller won the row, or a limited flow's execution) goes to `limits.claim`,
    unless the caller knows it is not limited (`limited=False`, from its message).
    """
    claimed = transitions.claim(execution_id)
    if claimed is None and limited is not False:
        return limits.claim(execution_id)  # a limited flow's, or another caller won the row
    return claimed
