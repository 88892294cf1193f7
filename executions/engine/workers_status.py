"""Which queues live workers serve, and why a PENDING execution has not started.

The workers themselves are asked (`celery inspect active_queues`, a broadcast that waits
`INSPECT_TIMEOUT` seconds for answers). Their answer is kept in Redis for `CACHE_SECONDS`,
shared by every web and worker process, so that a page or API list of PENDING executions
costs one Redis GET, and at most one process at a time asks the workers again (the others
use the previous answer meanwhile).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time

import redis
from celery import current_app as app

from ..models import Execution
from . import notify
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
    """Drop the cached answer (the next question asks the workers)."""
    with contextlib.suppress(redis.RedisError):
        notify.client().delete(_key())


def unserved_reason(execution: Execution) -> str:
    """"no worker serves queue X" for an execution whose queue no live worker consumes, else
    "" (also when that cannot be known). Cheap: one Redis GET (the cached answer)."""
    queue = celery_queue(execution.queue, execution.mode)
    served = served_queues()
    if served is not None and queue not in served:
        return f"no worker serves queue {queue}"
    return ""
