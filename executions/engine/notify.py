"""Redis notices: "execution X ended" for waiters, and cancel requests for workers.

A notice only wakes a waiter early; the database row decides. A lost notice therefore
costs one safety-poll interval, never a wrong answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from urllib.parse import urlparse

import redis
from django.conf import settings

log = logging.getLogger(__name__)

_client: redis.Redis | None = None
_client_pid: int | None = None


def client() -> redis.Redis:
    """A Redis client per process (a fork must not share sockets with its parent)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=15,
            socket_connect_timeout=5,
            health_check_interval=30,
            retry_on_timeout=True,
        )
        _client_pid = os.getpid()
    return _client


def _namespace() -> str:
    """Pub/sub channels are global to a Redis server, not per database number: name them
    after this installation's database and Redis database, so that two installations (or
    two test runs) sharing one Redis never hear each other's notices."""
    db = settings.DATABASES["default"]
    return f"automation:{db.get('NAME')}:{urlparse(settings.REDIS_URL).path.strip('/') or '0'}"


def cancel_channel() -> str:
    return f"{_namespace()}:cancel"


def park_channel() -> str:
    return f"{_namespace()}:park"


def pause_channel() -> str:
    return f"{_namespace()}:pause"


def flows_channel() -> str:
    return f"{_namespace()}:flows"


def ended_channel(execution_id: int) -> str:
    return f"{_namespace()}:ended:{execution_id}"


def message_channel(message_id: int) -> str:
    return f"{_namespace()}:message:{message_id}"


def publish_ended(execution_id: int, status: str) -> None:
    try:
        client().publish(ended_channel(execution_id), status)
    except redis.RedisError as exc:  # waiters fall back to their safety poll
        log.warning("could not publish end of execution %s: %s", execution_id, exc)


def publish_cancel(execution_ids: list[int]) -> None:
    if not execution_ids:
        return
    try:
        client().publish(cancel_channel(), json.dumps(execution_ids))
    except redis.RedisError as exc:  # the row is already ended; the flow stops at its next call
        log.warning("could not publish cancel of %s: %s", execution_ids, exc)


def publish_park(execution_ids: list[int]) -> None:
    """A stopping worker asks the processes running these executions to park their waits."""
    if not execution_ids:
        return
    try:
        client().publish(park_channel(), json.dumps(execution_ids))
    except redis.RedisError as exc:  # then the waits end after the shutdown grace
        log.warning("could not ask executions %s to park: %s", execution_ids, exc)


def publish_flows_changed() -> None:
    """A flow was saved or deleted: worker processes drop the flows they keep."""
    try:
        client().publish(flows_channel(), "changed")
    except redis.RedisError as exc:  # their guards resubscribe, and drop them, when it is back
        log.warning("could not announce a changed flow: %s", exc)


def publish_pause(execution_ids: list[int]) -> None:
    """Tell the processes running these executions to hold at their next flow_api call."""
    try:
        client().publish(pause_channel(), json.dumps(execution_ids))
    except redis.RedisError as exc:  # the row is PAUSED; the flow holds when it next waits
        log.warning("could not publish pause of %s: %s", execution_ids, exc)


_kept = threading.local()  # each thread's pub/sub connection between its waits


def borrow_pubsub() -> redis.client.PubSub:
    """A pub/sub connection for one wait: the one this thread gave back after its last wait
    (connecting anew cost each wait three round trips: connect, HELLO, the client's
    handshake), else a new one.

    Subscribe confirmations are not ignored: an ignored one makes `get_message` return None
    at once, which looks like a quiet poll interval to a waiter and costs it a needless
    re-read of its rows; users skip every message that is not a "message" on a channel
    they wait for (a kept connection may still hold notices of the last wait's channels).
    """
    kept, _kept.pubsub = getattr(_kept, "pubsub", None), None
    if kept is not None and _kept.pid == os.getpid():  # a forked child does not share it
        return kept
    return client().pubsub(ignore_subscribe_messages=False)


def give_back(pubsub: redis.client.PubSub, *, healthy: bool) -> None:
    """End a wait's subscriptions and keep its connection for this thread's next wait; close
    it if it may be broken (`healthy` False: an error, or a read interrupted midway)."""
    if healthy and getattr(_kept, "pubsub", None) is None:
        try:
            pubsub.unsubscribe()  # from all; the confirmations are read (skipped) next time
        except Exception:
            pass
        else:
            _kept.pubsub, _kept.pid = pubsub, os.getpid()
            return
    with contextlib.suppress(Exception):
        pubsub.close()
