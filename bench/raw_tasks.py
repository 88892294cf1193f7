"""The raw-Celery floor: the same shapes of work as the engine's scenarios, in plain Celery.

A tiny Celery app of its own, not tasks registered on `automation.celery.app`, because:

- the floor must be plain Celery: no Django import, no app-ready hooks, no execution guard
  in the pool processes; registered on the engine's app, every raw task would pay for
  the engine's worker setup and the comparison would flatter the engine;
- the raw shapes need a result backend (`apply_async().get()` is the Celery idiom the issue
  measures against), while the engine's app deliberately has none (`task_ignore_result`);
- the engine's app stays exactly as production runs it, untouched by the benchmark.

Everything else that affects speed is the same as the engine's worker: the same broker
(given to the worker as Celery's CELERY_BROKER_URL, so this module reads no environment), JSON,
`acks_late`, prefetch multiplier 1, and the bench starts both workers with the same flags
(`-P prefork -c 2 --without-mingle --without-gossip -l warning`).
The results go to the same Redis (CELERY_RESULT_BACKEND).
"""

from __future__ import annotations

import time

from celery import Celery, group

QUEUE = "bench.raw"

app = Celery("bench_raw")
app.conf.update(
    # The engine's speed-relevant settings (automation/settings.py), so that only the
    # engine's own work differs.
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=False,
    worker_prefetch_multiplier=1,
    worker_send_task_events=False,
    task_send_sent_event=False,
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    # Results only need to outlive one scenario.
    result_expires=600,
)


@app.task(name="bench_raw.noop")
def noop() -> float:
    """The trivial task; returns when it ran (epoch seconds), so a batch's end is exact."""
    return time.time()


@app.task(name="bench_raw.seq")
def seq(count: int) -> float:
    """`count` nested children awaited one after another (the engine's `this.flow` loop)."""
    for _ in range(count):
        # A task awaiting a task: Celery forbids it by default because it can deadlock;
        # with one parent and concurrency 2 it cannot, and it is the shape measured.
        noop.apply_async().get(timeout=60, disable_sync_subtasks=False)
    return time.time()


@app.task(name="bench_raw.fanout")
def fanout(count: int) -> float:
    """`count` children sent at once, then awaited together (the engine's run_async)."""
    result = group(noop.s() for _ in range(count)).apply_async()
    result.get(timeout=300, disable_sync_subtasks=False)
    return time.time()
