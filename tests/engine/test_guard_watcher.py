"""A worker process's guard watcher never stops for good: cancels and timeouts reach a
process only through it, so a watcher that blocks would leave a cancelled flow running."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import connections, transaction

from executions.engine import guard as guard_module
from executions.engine.guard import Frame, ProcessGuard
from executions.models import Execution

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_heartbeat_skips_a_row_another_transaction_holds_instead_of_waiting():
    row = Execution.objects.create(type="SCRIPT", name="held", status="RUNNING", script="")
    guard = ProcessGuard()
    guard.frames.append(Frame(row.pk, None, None, row))
    held, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                Execution.objects.select_for_update().get(pk=row.pk)
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        guard._heartbeat()
        assert time.monotonic() - started < 2  # it waited for nobody
    finally:
        release.set()
        holder.join(10)


def test_a_stuck_watcher_is_named_with_its_stack_and_replaced(monkeypatch, caplog):
    guard = ProcessGuard()
    stuck, release = threading.Event(), threading.Event()

    def heartbeat_that_never_returns() -> None:  # stands for any call that blocks for good
        stuck.set()
        release.wait(30)

    monkeypatch.setattr(guard, "_heartbeat", heartbeat_that_never_returns)
    monkeypatch.setattr(guard_module, "STALL_SECONDS", 1.0)
    monkeypatch.setitem(guard_module.settings.AUTOMATION, "HEARTBEAT_SECONDS", 0.1)
    guard.start()
    first = guard._thread
    try:
        assert stuck.wait(10)
        guard.check_watcher()
        assert guard._thread is first  # not stuck long enough yet
        time.sleep(1.2)
        with caplog.at_level(logging.ERROR, logger=guard_module.__name__):
            guard.check_watcher()
        assert guard._thread is not first and guard._thread is not None
        assert guard._thread.is_alive()
        assert "execution guard stalled" in caplog.text
        assert "heartbeat_that_never_returns" in caplog.text  # where it stood
    finally:
        replacement, guard._thread = guard._thread, None  # both leave at their next turn
        release.set()
        assert first is not None
        first.join(10)
        if replacement is not None:
            replacement.join(10)
    assert not first.is_alive()
