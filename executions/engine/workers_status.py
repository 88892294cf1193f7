"""Which queues live workers serve, and why a PENDING execution has not started.

Two sources:
- each worker reports itself, every heartbeat, into one Redis hash (`start_reporting`,
  begun when the worker is set up; withdrawn when it stops). Reading it is one HGETALL,
  never a broadcast: `live_workers` (for /ready, /metrics and the admin's "live workers"
  box), `unserved_reason` (the JSON of a PENDING execution, and
  executions.engine.waiting's `wait_for_started`) read it;
- for explicit refreshes (`served_queues`), the workers are asked
  (`celery inspect active_queues`, a broadcast that waits `INSPECT_TIMEOUT` seconds). That
  answer is kept in Redis for `CACHE_SECONDS`, shared by every process, and at most one
  process at a time asks again (the others use the previous answer meanwhile).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import Any

import redis
from celery import current_app as app
from django.conf import settings

from ..models import Execution, Flow
from . import notify
from .isolation import isolation
from .queues import celery_queue

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0  # how old an answer may be before the workers are asked again
INSPECT_TIMEOUT = 1.0  # how long a broadcast waits for workers to answer
_KEEP_SECONDS = 300  # a stale answer, used while another process asks again


def _key() -> str:
    return f"{notify._namespace()}:served-queues"


def ask_workers(timeout: float = INSPECT_TIMEOUT) -> frozenset[str]:
    """The Celery queues that the workers answering within `timeout` consume (uncached)."""
    # A connection of its own: on the shared default one, every other broadcast over Redis
    # went unanswered (replies of the previous one still being collected).
    with app.connection_for_write() as connection:
        replies = app.control.inspect(timeout=timeout, connection=connection).active_queues()
    replies = replies or {}
    return frozenset(
        queue["name"] for queues in replies.values() for queue in (queues or []) if "name" in queue
    )


def served_queues(*, refresh: bool = False) -> frozenset[str] | None:
    """The Celery queues that live workers consume, at most `CACHE_SECONDS` old.

    None when it cannot be known (Redis or the broker unreachable): then nobody is told
    that a queue has no worker, because nobody knows.
    """
    client = notify.client()
    stale: frozenset[str] | None = None
    try:
        if not refresh:
            raw = client.get(_key())
            if raw:
                cached = json.loads(raw)
                stale = frozenset(cached["queues"])
                if time.time() - float(cached["at"]) < CACHE_SECONDS:
                    return stale
                # Someone else is asking right now: their answer arrives soon, use ours.
                if not client.set(f"{_key()}:asking", 1, nx=True, ex=int(INSPECT_TIMEOUT) + 2):
                    return stale
        queues = ask_workers()
        client.set(
            _key(), json.dumps({"at": time.time(), "queues": sorted(queues)}), ex=_KEEP_SECONDS
        )
        return queues
    except (redis.RedisError, OSError, ValueError, KeyError) as exc:
        log.warning("cannot tell which queues workers serve: %s", exc)
        return stale
    except Exception as exc:  # the broker's own errors (kombu) when it is unreachable
        log.warning("cannot ask the workers which queues they serve: %s", exc)
        return stale


def forget() -> None:
    """Drop the cached answers (the next question asks the workers, the next reason reads
    their reports)."""
    global _served_read
    _served_read = (float("-inf"), None)
    with contextlib.suppress(redis.RedisError):
        notify.client().delete(_key())


def _reports_key() -> str:
    return f"{notify._namespace()}:served-queues-reported"


def _report_fresh_seconds() -> float:
    """A worker's report older than this is a worker that stopped (three heartbeats)."""
    return max(3 * float(settings.AUTOMATION["HEARTBEAT_SECONDS"]), 5.0)


def report_served_queues(hostname: str, queues: set[str] | frozenset[str]) -> None:
    """A worker's heartbeat of what it consumes and how it isolates flow code (its main
    process calls this, see `start_reporting`)."""
    report = {"at": time.time(), "queues": sorted(queues), "isolation": isolation().description}
    try:
        notify.client().hset(_reports_key(), hostname, json.dumps(report))
    except redis.RedisError as exc:  # its next heartbeat tries again
        log.warning("cannot report the queues of worker %s: %s", hostname, exc)


def withdraw_report(hostname: str) -> None:
    """A stopping worker serves nothing any more."""
    with contextlib.suppress(redis.RedisError):
        notify.client().hdel(_reports_key(), hostname)


def start_reporting(hostname: str, queues: set[str] | frozenset[str]) -> threading.Thread:
    """Report now and then every heartbeat, from a daemon thread of the worker's process."""

    def loop() -> None:
        every = float(settings.AUTOMATION["HEARTBEAT_SECONDS"])
        while True:
            report_served_queues(hostname, queues)
            time.sleep(every)

    thread = threading.Thread(target=loop, name="served-queues-report", daemon=True)
    thread.start()
    return thread


def worker_isolation() -> dict[str, str]:
    """hostname -> how that live worker isolates flow code (isolation.Isolation's words)."""
    fresh_after = time.time() - _report_fresh_seconds()
    found: dict[str, str] = {}
    for name, raw in notify.client().hgetall(_reports_key()).items():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            report = json.loads(raw)
            if float(report["at"]) >= fresh_after:
                key = name.decode() if isinstance(name, bytes) else name
                found[key] = str(report.get("isolation") or "not reported (an older worker)")
    return found


def live_workers() -> dict[str, list[str]]:
    """hostname -> the queues it consumes, for each worker that reported within the last
    few heartbeats (one HGETALL; a report gone stale is dropped for everyone). Raises
    redis.RedisError when Redis cannot be asked: /ready says so."""
    client = notify.client()
    reports = client.hgetall(_reports_key())
    fresh_after = time.time() - _report_fresh_seconds()
    live: dict[str, list[str]] = {}
    stale: list[Any] = []
    for name, raw in reports.items():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            report = json.loads(raw)
            if float(report["at"]) >= fresh_after:
                live[name.decode() if isinstance(name, bytes) else name] = list(report["queues"])
                continue
        stale.append(name)
    if stale:
        client.hdel(_reports_key(), *stale)
    return live


def reported_queues() -> frozenset[str] | None:
    """The queues that workers reported within the last few heartbeats; None when Redis
    cannot be asked."""
    try:
        workers = live_workers()
    except redis.RedisError as exc:
        log.warning("cannot read which queues workers serve: %s", exc)
        return None
    return frozenset(name for queues in workers.values() for name in queues)


# `unserved_reason` answers from the reports as this process read them at most this long
# ago: a page of 50 PENDING executions asks Redis once, not 50 times, and a start's answer
# not at all when another one was just answered. Reports are seconds old anyway.
_SERVED_READ_SECONDS = 1.0
_served_read: tuple[float, frozenset[str] | None] = (float("-inf"), None)


def _recently_reported_queues() -> frozenset[str] | None:
    global _served_read
    read_at, served = _served_read
    now = time.monotonic()
    if now - read_at > _SERVED_READ_SECONDS:
        served = reported_queues()
        _served_read = (now, served)
    return served


def unserved_reason(execution: Execution) -> str:
    """"no worker serves queue X" for an execution whose queue no live worker consumes, else
    "" (also when that cannot be known). From the workers' own reports: no broadcast."""
    queue = celery_queue(execution.queue, execution.mode)
    served = _recently_reported_queues()
    if served is not None and queue not in served:
        return f"no worker serves queue {queue}"
    return ""



def save_warning(record: Any) -> str:
    """For the answer to saving a flow, schedule or webhook: "no live worker serves queue
    X ..." when the queue its executions go to has no live worker (from the workers' own
    reports, one HGETALL, never a broadcast), else "" (also when it is disabled, or when
    that cannot be known). A flow is checked in both modes, a schedule or webhook in its own."""
    if not getattr(record, "enabled", True):
        return ""
    if isinstance(record, Flow):
        group, modes = record.queue, list(Execution.Mode.values)
    else:
        flow = getattr(record, "flow", None)
        if flow is None:
            return ""
        group, modes = flow.queue, [record.mode]
    served = reported_queues()
    if served is None:
        return ""
    missing = [celery_queue(group, mode) for mode in modes if celery_queue(group, mode) not in served]
    if not missing:
        return ""
    names = " or ".join(missing)
    return (
        f"no live worker serves queue {names}: its executions will wait PENDING until a "
        "worker that consumes it starts"
    )
