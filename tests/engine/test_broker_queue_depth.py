"""The broker's view, whichever broker BROKER_URL names (Redis or RabbitMQ): how many
messages wait in a queue, and the message priority that makes it deliver high first."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from executions import engine
from executions.engine import broker

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]


def test_executions_for_a_group_nobody_serves_are_counted_in_its_queue_until_purged(make_flow):
    make_flow("unserved", "def handler(system, this):\n    pass\n", queue="depth")
    broker.purge(["depth.productive"])
    for _ in range(3):
        engine.start_execution(flow="unserved")

    assert wait_until(lambda: broker.queue_depth("depth.productive") == 3, 10)
    assert broker.queue_depths(["depth.productive", "depth.development"]) == {
        "depth.productive": 3, "depth.development": 0,
    }
    assert broker.purge(["depth.productive"]) == 3
    assert broker.queue_depth("depth.productive") == 0


def test_a_queue_never_used_has_depth_zero_and_is_not_created():
    assert broker.queue_depth("depth.never-used") == 0
    assert broker.purge(["depth.never-used"]) == 0


def test_an_unreachable_broker_gives_an_unknown_depth_quickly(settings):  # type: ignore[no-untyped-def]
    scheme = "amqp://guest:guest" if broker.is_amqp() else "redis://"
    settings.BROKER_URL = f"{scheme}@127.0.0.1:1/"
    started = time.monotonic()

    assert broker.queue_depth("default.productive", timeout=1) is None
    assert time.monotonic() - started < 5


def test_high_priority_is_the_number_this_broker_delivers_first():
    high, normal, low = (broker.message_priority(p) for p in ("high", "normal", "low"))
    if settings.BROKER_KIND == "amqp":
        assert high > normal > low  # RabbitMQ: the highest number first
        assert high <= settings.CELERY_TASK_QUEUE_MAX_PRIORITY
    else:
        assert high < normal < low  # Redis priority steps: the lowest number first
        assert [high, normal, low] == settings.CELERY_BROKER_TRANSPORT_OPTIONS["priority_steps"]
