"""Prometheus metrics of the engine, correct under any number of web and worker processes.

Counters and histograms live in Redis, one hash each, incremented by whichever process
starts or ends an execution (after its transaction commits: a rolled-back start counts
nothing; sent in batches, see `_Buffer`). Gauges are read when `/metrics` is scraped: queue depths from the broker, live
workers from their own reports (executions.engine.workers_status), waiting executions
from the database.
So every web process answers a scrape with the same totals, and a restarted process loses
none. The exposition format (types, label escaping, cumulative buckets) is
prometheus-client's: `EngineCollector` yields its metric families.

A Redis that cannot be reached loses those increments (logged), never the execution.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ..models import Execution, Flow
from . import broker, notify, workers_status
from .queues import celery_queue, default_group

log = logging.getLogger(__name__)

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, math.inf)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, math.inf)
_SEP = "|"


def _key(name: str) -> str:
    return f"{notify._namespace()}:metrics:{name}"


def _bucket(value: float, buckets: tuple[float, ...]) -> int:
    return next(i for i, bound in enumerate(buckets) if value <= bound)


class _Buffer:
    """Increments gathered in this process and sent to Redis in one pipeline every
    FLUSH_SECONDS by a daemon thread (and at exit), so that counting costs the hot path a
    dict update, not a network round trip. A process killed outright loses at most its
    last FLUSH_SECONDS of increments; a Redis that cannot be reached loses that batch."""

    FLUSH_SECONDS = 0.5

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, str], float] = {}
        self.thread: threading.Thread | None = None

    def add(self, key: str, field: str, amount: float = 1) -> None:
        with self.lock:
            self.pending[(key, field)] = self.pending.get((key, field), 0) + amount
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="metrics-flush", daemon=True)
                self.thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, {}
        if not batch:
            return
        try:
            with notify.client().pipeline(transaction=False) as pipe:
                for (key, field), amount in batch.items():
                    if isinstance(amount, float):
                        pipe.hincrbyfloat(key, field, amount)
                    else:
                        pipe.hincrby(key, field, amount)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("%d metric increments not recorded: %s", len(batch), exc)


_buffer = _Buffer()


def _after_fork() -> None:
    """A forked process (a pool process) starts with an empty buffer, a fresh lock and no
    thread: its parent's pending increments are the parent's to send."""
    global _buffer
    _buffer = _Buffer()


os.register_at_fork(after_in_child=_after_fork)
atexit.register(lambda: _buffer.flush())


def _observe(key: str, value: float, buckets: tuple[float, ...]) -> None:
    value = max(value, 0.0)
    _buffer.add(key, f"b{_bucket(value, buckets)}")
    _buffer.add(key, "sum", float(value))
    _buffer.add(key, "count")


def count_started(type: str, mode: str, trigger: str) -> None:
    """One execution was created (counted once its transaction commits)."""
    field = _SEP.join((str(type), str(mode), str(trigger)))
    transaction.on_commit(lambda: _buffer.add(_key("started"), field))


def count_ended(ended: Iterable[tuple[str, str, Any]]) -> None:
    """Executions ended: (type, status, started_at or None if it never started), counted
    once the ending transaction commits."""
    now = timezone.now()
    rows = [
        (str(type_), str(status), (now - started).total_seconds() if started else None)
        for type_, status, started in ended
    ]
    if rows:
        transaction.on_commit(lambda: _add_ended(rows))


def _add_ended(rows: list[tuple[str, str, float | None]]) -> None:
    for type_, status, seconds in rows:
        _buffer.add(_key("ended"), _SEP.join((type_, status)))
        if seconds is not None:
            _observe(_key(f"duration:{type_}"), seconds, DURATION_BUCKETS)


def observe_schedule_lag(seconds: float) -> None:
    """A schedule's firing started `seconds` after its fire time."""
    _observe(_key("schedule_lag"), seconds, LAG_BUCKETS)


def flush() -> None:
    """Send this process's pending increments now (a scrape, a test, a stopping worker)."""
    _buffer.flush()


# --- exposition -----------------------------------------------------------------------------
def _histogram(raw: dict[bytes, bytes], buckets: tuple[float, ...]) -> tuple[list[tuple[str, float]], float]:
    counts = [int(raw.get(f"b{i}".encode(), 0)) for i in range(len(buckets))]
    cumulative, total = [], 0
    for bound, count in zip(buckets, counts, strict=True):
        total += count
        cumulative.append(("+Inf" if math.isinf(bound) else repr(float(bound)), float(total)))
    return cumulative, float(raw.get(b"sum", 0))


class EngineCollector:
    """Yields the engine's metric families at each scrape (prometheus-client's collector
    protocol). Reads Redis in one round trip, the broker and the database once each."""

    def describe(self) -> list[Metric]:
        return []  # no fixed description: the registry must not collect at registration

    def collect(self) -> Iterator[Metric]:
        _buffer.flush()  # this process's own increments count in its answer
        client = notify.client()
        types = list(Execution.Type.values)
        with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(_key("started"))
            pipe.hgetall(_key("ended"))
            for type_ in types:
                pipe.hgetall(_key(f"duration:{type_}"))
            pipe.hgetall(_key("schedule_lag"))
            started, ended, *durations, lag = pipe.execute()

        family = CounterMetricFamily(
            "automation_executions_started", "Executions created, by type, mode and trigger.",
            labels=["type", "mode", "trigger"],
        )
        for field, value in sorted(started.items()):
            family.add_metric(field.decode().split(_SEP), float(value))
        yield family

        family = CounterMetricFamily(
            "automation_executions_ended", "Executions ended, by type and final status.",
            labels=["type", "status"],
        )
        for field, value in sorted(ended.items()):
            family.add_metric(field.decode().split(_SEP), float(value))
        yield family

        histogram = HistogramMetricFamily(
            "automation_execution_duration_seconds",
            "Seconds from an execution's start to its end, by type.", labels=["type"],
        )
        for type_, raw in zip(types, durations, strict=True):
            if raw:
                buckets, total = _histogram(raw, DURATION_BUCKETS)
                histogram.add_metric([type_], buckets, total)
        yield histogram

        histogram = HistogramMetricFamily(
            "automation_schedule_lag_seconds",
            "Seconds from a schedule's fire time to the start of its firing.",
        )
        buckets, total = _histogram(lag, LAG_BUCKETS)
        histogram.add_metric([], buckets, total)
        yield histogram

        workers = workers_status.live_workers()
        served: dict[str, int] = {}
        for names in workers.values():
            for name in names:
                served[name] = served.get(name, 0) + 1
        groups = {default_group(), *Flow.objects.exclude(queue="").values_list("queue", flat=True)}
        queues = {celery_queue(g, m) for g in groups for m in Execution.Mode.values} | set(served)
        gauge = GaugeMetricFamily(
            "automation_workers", "Live workers consuming each Celery queue.", labels=["queue"]
        )
        for name in sorted(queues):
            gauge.add_metric([name], float(served.get(name, 0)))
        yield gauge

        gauge = GaugeMetricFamily(
            "automation_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        for name, depth in sorted(broker.queue_depths(sorted(queues)).items()):
            if depth is not None:
                gauge.add_metric([name], float(depth))
        yield gauge

        counts = dict(
            Execution.objects.filter(status=Execution.Status.WAITING)
            .values_list("parked").annotate(n=Count("id")).values_list("parked", "n")
        )
        gauge = GaugeMetricFamily(
            "automation_executions_waiting",
            "Executions WAITING now; parked ones hold no worker process.", labels=["parked"],
        )
        for parked in (False, True):
            gauge.add_metric([str(parked).lower()], float(counts.get(parked, 0)))
        yield gauge
