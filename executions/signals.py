"""Every signal receiver of the app, connected in one place (`connect`, from apps.ready).

- Django: a Flow's save records a FlowRevision, and its save, delete or bulk update tells
  the workers (they drop the flows they keep); a Schedule's save, bulk update or delete
  keeps its django-celery-beat rows in step (executions.models.schedule sends those);
- Celery: a worker records the queues it serves, asks its executions to park or end when it
  stops, runs a reconciler pass after it starts, and ends at once an execution whose pool
  process died;
- the engine's plug points: flow_api's port, the runner's SCHEDULE builtin, and the
  features the port reaches (message forms, schedules).
"""

from __future__ import annotations

import gc
import logging
import re

from billiard.exceptions import WorkerLostError
from celery.signals import (
    celeryd_after_setup,
    task_failure,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)
from django.db import transaction
from django.db.models.signals import post_delete, post_save

import flow_api.port

from . import messages, schedules
from .engine import (
    flow_cache,
    guard,
    hosts,
    metrics,
    notify,
    port,
    queues,
    runner,
    shutdown,
    timers,
    workers_status,
)
from .engine.dispatch import RUN_TASK
from .engine.reconciler import settle_lost
from .models import (
    Execution,
    Flow,
    Schedule,
    flows_changed,
    record_flow_revision,
    schedule_deleted,
    schedule_saved,
    schedules_changed,
)
from .schedules import beat

log = logging.getLogger(__name__)
_JOB_COUNTER = re.compile(r"\s*Job: \d+\.?")


def record_served_queues(sender: object, instance: object, **kwargs: object) -> None:
    """A worker is set up: note what it consumes, and report it every heartbeat; say how
    its flows are isolated (the same words go into its reports, for /ready and the dashboard)."""
    served = set(instance.app.amqp.queues.consume_from)  # type: ignore[attr-defined]
    queues.set_served_queues(served)
    isolation = hosts.isolation()
    (log.error if isolation.refused else log.info)(
        "flow isolation: %s%s", isolation.description,
        " (AUTOMATION_FLOW_ISOLATION=full): flows are refused" if isolation.refused else "",
    )
    workers_status.start_reporting(str(sender), served)
    timers.start_loop()  # parked sleepers that are due resume from any live worker


def withdraw_served_queues(sender: object = None, **kwargs: object) -> None:
    """A worker stops: its queues are no longer served by it."""
    workers_status.withdraw_report(str(sender))


def _cause(exception: BaseException) -> str:
    """WorkerLostError's text without Celery's job counter ("Job: 2312."), which reads like
    the id of another execution: "Worker exited prematurely: exitcode 7"."""
    return _JOB_COUNTER.sub("", str(exception)).strip()


def on_worker_lost(
    sender: object = None, task_id: str | None = None, exception: BaseException | None = None,
    args: tuple[object, ...] | None = None, **_: object,
) -> None:
    """The pool process running an execution died (the flow called os._exit(), a crash, the
    OOM killer): Celery's main process sees WorkerLostError. End the execution at once with
    that reason instead of waiting for the reconciler's heartbeat threshold."""
    if getattr(sender, "name", None) != RUN_TASK:
        return
    if not isinstance(exception, WorkerLostError) or not args:
        return
    try:
        execution_id = int(args[0])  # type: ignore[call-overload]
        settle_lost(  # a wait for a message form's answer is parked, not ended
            [execution_id],
            f"worker lost: the process running it exited ({_cause(exception)}); "
            "a flow calling os._exit() does this",
        )
    except Exception:  # the reconciler ends it later anyway
        log.exception("could not end the execution of lost task %s", task_id)


def on_process_init(**kwargs: object) -> None:
    """A pool process starts: it listens for cancels before it claims anything.

    What it has loaded (Django, Celery, the engine: about 100,000 objects) is frozen out of
    the garbage collector's reach: a full collection then walks only what was made since,
    instead of stalling whichever execution it falls on for 40 to 70 ms (measured here)."""
    gc.collect()
    gc.freeze()
    guard.guard().start()


def on_process_shutdown(**kwargs: object) -> None:
    """A pool process stops: its flow hosts go, and its last metric increments are sent
    (it exits without atexit)."""
    hosts.shut_down()
    metrics.flush()


def flow_changed(**kwargs: object) -> None:
    """A flow was saved, deleted or bulk-updated: this process drops the flows it keeps at
    once, the worker processes once this commits (executions.engine.flow_cache)."""
    flow_cache.clear()
    transaction.on_commit(notify.publish_flows_changed)


def connect() -> None:
    """Connect every receiver and plug the features into the engine (idempotent)."""
    flow_api.port.install(port.EnginePort())
    port.install_features(message_ops=messages.port_call, save_schedule=schedules.save_schedule)
    runner.register_builtin(Execution.Type.SCHEDULE, schedules.run)

    post_save.connect(record_flow_revision, sender=Flow, dispatch_uid="executions.flow_revision")
    post_save.connect(flow_changed, sender=Flow, dispatch_uid="executions.flow_changed")
    post_delete.connect(flow_changed, sender=Flow, dispatch_uid="executions.flow_deleted")
    flows_changed.connect(flow_changed, sender=Flow, dispatch_uid="executions.flows_changed")
    schedule_saved.connect(beat.on_schedule_saved, sender=Schedule, dispatch_uid="executions.beat.sync")
    schedules_changed.connect(
        beat.on_schedules_changed, sender=Schedule, dispatch_uid="executions.beat.sync_many"
    )
    schedule_deleted.connect(
        beat.on_schedule_deleted, sender=Schedule, dispatch_uid="executions.beat.delete"
    )

    celeryd_after_setup.connect(record_served_queues, weak=False)
    worker_shutting_down.connect(shutdown.on_worker_shutting_down, weak=False)
    worker_shutting_down.connect(withdraw_served_queues, weak=False)
    worker_ready.connect(shutdown.reconcile_after_start, weak=False)
    task_failure.connect(on_worker_lost, weak=False)
    worker_process_init.connect(on_process_init, weak=False)
    worker_process_shutdown.connect(on_process_shutdown, weak=False)
