"""What differs between the two Celery brokers the engine runs on: Redis and RabbitMQ.

The broker is BROKER_URL (default REDIS_URL); the notices of executions/notify.py always
use REDIS_URL. Everything here knows which kind of broker it talks to, so that callers
(dispatch, the admin's queue depths, the tests' clean start) need not.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlparse

import redis
from amqp.exceptions import NotFound
from django.conf import settings
from kombu import Connection

log = logging.getLogger(__name__)

DEPTH_TIMEOUT = 2.0  # seconds a queue depth may take before it is "unknown"

# Celery message priority per Execution.Priority, per broker kind.
# Redis (kombu's priority_steps [0, 3, 6], settings.py): the lowest number is popped first.
# RabbitMQ (queues declared with x-max-priority 9): the highest number is delivered first.
_PRIORITIES: dict[str, dict[str, int]] = {
    "redis": {"high": 0, "normal": 3, "low": 6},
    "amqp": {"high": 9, "normal": 5, "low": 1},
}

# kombu's Redis transport keeps one list per queue and priority step: "<queue>" for step 0,
# "<queue>\x06\x16<step>" for the others.
_REDIS_PRIORITY_SEP = "\x06\x16"


def where() -> str:
    """The broker as a log line or an answer may name it: its kind, host and port (never a
    user name or password)."""
    url = urlparse(str(settings.BROKER_URL))
    if url.scheme == "unix":
        return f"{kind()} at {url.path}"
    try:
        port = f":{url.port}" if url.port else ""
    except ValueError:
        port = ""
    return f"{kind()} at {url.hostname or 'localhost'}{port}"


def kind() -> str:
    """"redis" or "amqp": the kind of broker BROKER_URL names."""
    return str(settings.BROKER_KIND)


def is_amqp() -> bool:
    return kind() == "amqp"


def message_priority(priority: str) -> int:
    """The Celery message priority that makes this broker deliver `priority` (an
    Execution.Priority value: high, normal, low) in the right order."""
    return _PRIORITIES[kind()][str(priority)]


def _redis_lists(name: str) -> list[str]:
    steps = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("priority_steps") or [0]
    return [name if step == 0 else f"{name}{_REDIS_PRIORITY_SEP}{step}" for step in steps]


@contextlib.contextmanager
def _amqp_connection(timeout: float) -> Iterator[Any]:
    """A connection of its own, bounded in connect, read and write time."""
    connection = Connection(
        settings.BROKER_URL, connect_timeout=timeout,
        transport_options={"read_timeout": timeout, "write_timeout": timeout},
    )
    try:
        connection.connect()
        yield connection
    finally:
        with contextlib.suppress(Exception):
            connection.release()


def _amqp_message_count(connection: Any, name: str) -> int:
    """A passive declare tells the number of ready messages without creating the queue.
    A queue that does not exist yet holds no message (RabbitMQ answers 404 and closes the
    channel, hence a channel per queue)."""
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=name, passive=True).message_count)
    except NotFound:
        return 0
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def _redis_client(timeout: float) -> Any:
    return redis.Redis.from_url(
        settings.BROKER_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )


def queue_depths(names: Iterable[str], *, timeout: float = DEPTH_TIMEOUT) -> dict[str, int | None]:
    """How many messages wait in each Celery queue (not counting those a worker holds).

    One connection for all the names; every value is None when the broker cannot be asked
    within about `timeout` seconds: a page that shows depths must not hang on the broker.
    """
    names = list(dict.fromkeys(names))
    if not names:
        return {}
    try:
        if is_amqp():
            with _amqp_connection(timeout) as connection:
                return {name: _amqp_message_count(connection, name) for name in names}
        client = _redis_client(timeout)
        try:
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    for key in _redis_lists(name):
                        pipe.llen(key)
                counts = iter(pipe.execute())
            steps = len(_redis_lists(names[0]))
            return {name: sum(next(counts) for _ in range(steps)) for name in names}
        finally:
            client.close()
    except Exception as exc:  # redis, socket and kombu/amqp errors alike mean "unknown"
        log.warning("cannot read the depth of queues %s: %s", ", ".join(names), exc)
        return dict.fromkeys(names)


def queue_depth(name: str, *, timeout: float = DEPTH_TIMEOUT) -> int | None:
    """How many messages wait in the Celery queue `name`; None when the broker is
    unreachable within about `timeout` seconds."""
    return queue_depths([name], timeout=timeout)[name]


def purge(names: Iterable[str], *, timeout: float = 10.0) -> int:
    """Drop the messages waiting in these Celery queues; the number dropped.

    For a clean start of a test session on a shared broker (on Redis a flush of the test's
    own database does the same). Queues that do not exist are left uncreated.
    """
    names = list(dict.fromkeys(names))
    if is_amqp():
        dropped = 0
        with _amqp_connection(timeout) as connection:
            for name in names:
                channel = connection.channel()
                try:
                    channel.queue_declare(queue=name, passive=True)
                    dropped += int(channel.queue_purge(queue=name) or 0)
                except NotFound:
                    pass
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
        return dropped
    client = _redis_client(timeout)
    try:
        keys = [key for name in names for key in _redis_lists(name)]
        counts = [client.llen(key) for key in keys]
        if keys:
            client.delete(*keys)
        return int(sum(counts))
    finally:
        client.close()
