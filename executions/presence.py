"""Which workers are alive and which Celery queues they consume, from their heartbeats.

Each worker's main process writes a heartbeat into Redis every AUTOMATION_HEARTBEAT_SECONDS
(a sorted set: hostname -> last beat; a hash: hostname -> its queues), and removes itself
when it stops. Reading who is alive is one Redis round trip, so `/ready`, `/metrics` and
pages may ask on every request, unlike a Celery `inspect` broadcast, which waits for
answers. A worker that died without saying so drops out once its beat is older than
`max_age()` (three beats and a second).
"""

from __future__ import annotations

import json
import logging
import threading
import time

import redis
from django.conf import settings

from . import notify

log = logging.getLogger(__name__)

_stop = threading.Event()


def _keys() -> tuple[str, str]:
    namespace = notify._namespace()
    return f"{namespace}:workers", f"{namespace}:worker-queues"


def interval() -> float:
    return float(settings.AUTOMATION["HEARTBEAT_SECONDS"])


def max_age() -> float:
    return 3 * interval() + 1


def beat(hostname: str, queues: list[str]) -> None:
    beats, queue_map = _keys()
    with notify.client().pipeline(transaction=False) as pipe:
        pipe.zadd(beats, {hostname: time.time()})
        pipe.hset(queue_map, hostname, json.dumps(sorted(queues)))
        pipe.execute()


def start(hostname: str, queues: list[str]) -> None:
    """Beat from a thread of the worker's main process until `stop`."""
    _stop.clear()

    def run() -> None:
        while not _stop.is_set():
            try:
                beat(hostname, queues)
            except redis.RedisError as exc:  # Redis restarting: the next beat tries again
                log.warning("worker heartbeat not recorded: %s", exc)
            _stop.wait(interval())

    threading.Thread(target=run, name="worker-presence", daemon=True).start()


def stop(hostname: str) -> None:
    _stop.set()
    beats, queue_map = _keys()
    try:
        with notify.client().pipeline(transaction=False) as pipe:
            pipe.zrem(beats, hostname)
            pipe.hdel(queue_map, hostname)
            pipe.execute()
    except redis.RedisError as exc:  # it then drops out by age
        log.warning("could not remove worker %s from the live workers: %s", hostname, exc)


def live_workers() -> dict[str, list[str]]:
    """hostname -> the Celery queues it consumes, for every worker that beat recently.

    Raises redis.RedisError when Redis cannot be asked."""
    beats, queue_map = _keys()
    client = notify.client()
    cutoff = time.time() - max_age()
    with client.pipeline(transaction=False) as pipe:
        pipe.zrangebyscore(beats, "-inf", cutoff)
        pipe.zrangebyscore(beats, cutoff, "+inf")
        dead, names = pipe.execute()
    if dead:  # they died without saying so: they drop out for everyone
        with client.pipeline(transaction=False) as pipe:
            pipe.zrem(beats, *dead)
            pipe.hdel(queue_map, *dead)
            pipe.execute()
    if not names:
        return {}
    raw = client.hmget(queue_map, names)
    return {
        name.decode(): json.loads(value) if value else []
        for name, value in zip(names, raw, strict=True)
    }
