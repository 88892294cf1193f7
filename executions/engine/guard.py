"""What a worker process knows about the executions it is running right now.

Each process keeps a stack of frames: the execution its task runs and the inline children
that execution runs inside it. A watcher thread per process

- listens for cancel requests on Redis and, when one names a frame, interrupts where the
  flow stands: in its flow host (executions.engine.hosts) when its code runs there, else
  the main thread with SIGUSR2, whose handler raises `ExecutionTerminated` in the engine's
  own interruptible waits (a flow's sleep, a wait for children);
- enforces each frame's deadline (a flow's timeout) the same way;
- records a heartbeat for the frames, so that the reconciler can tell lost work;
- hears a stopping worker ask its executions to park their message waits
  (`park_requested`, read by executions.messages.forms.wait).

Interrupts are delivered only while a frame's own code runs (`interruptible`), never in the
middle of the engine's bookkeeping; there, the port checks `raise_if_terminated()` instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from flow_api.exceptions import ExecutionTerminated

from ..models import Execution
from . import flow_cache, notify
from .ending import end_timed_out

log = logging.getLogger(__name__)
INTERRUPT_SIGNAL = signal.SIGUSR2
# A watcher whose loop has not turned for this long is stuck (a call that never returns):
# its process logs where it stands and starts another, so cancels and timeouts still arrive.
STALL_SECONDS = 30.0


@dataclass
class Frame:
    execution_id: int
    deadline: float | None  # time.monotonic() value, or None
    timeout: float | None
    execution: Any = None  # the Execution row object, for the port to reuse
    interruptible: list[bool] = field(default_factory=lambda: [False])
    host: Any = None  # the flow host running this frame's code while this process waits on it


class ProcessGuard:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: list[Frame] = []
        self.terminated: set[int] = set()
        self.park_requested = False  # the worker stops: message waits park (engine.parking)
        self.paused: set[int] = set()  # paused by a user or a flow: hold at the next call
        self.pid = os.getpid()
        self._thread: threading.Thread | None = None
        self._signals_ready = False
        self._turned_at = time.monotonic()  # the watcher's last turn of its loop

    # --- main thread ---------------------------------------------------------------------
    def start(self) -> None:
        """Listen for notices and beat the heart (idempotent): a pool process starts it as
        it starts, so that it is subscribed before its first execution runs."""
        if self._thread is not None and self._thread.is_alive():
            return
        if not self._signals_ready and threading.current_thread() is threading.main_thread():
            signal.signal(INTERRUPT_SIGNAL, self._on_signal)
            self._signals_ready = True
        self._start_watcher()

    def stop(self, timeout: float = 5.0) -> None:
        """End the watcher (it leaves at its next turn, a quarter second at most, closing
        its own database connection): for a process that ran flows in passing, such as a
        test run, before its database goes."""
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def _start_watcher(self) -> None:
        self._turned_at = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="execution-guard", daemon=True)
        self._thread.start()

    def check_watcher(self) -> None:
        """Called while the main thread waits on a flow: a watcher that is stuck is named
        with its stack in the log and replaced (the stuck one leaves when it wakes)."""
        stalled = time.monotonic() - self._turned_at
        thread = self._thread
        if thread is None or stalled < STALL_SECONDS:
            return
        flow_cache.listening(False)  # until the new watcher has subscribed
        stack = sys._current_frames().get(thread.ident or 0)
        log.error(
            "execution guard stalled for %.0f s; starting another. It stood at:\n%s",
            stalled, "".join(traceback.format_stack(stack)) if stack else "(it had ended)",
        )
        self._start_watcher()

    @contextlib.contextmanager
    def frame(self, execution: Any) -> Iterator[Frame]:
        self.start()
        execution_id, timeout = execution.pk, execution.timeout
        deadline = time.monotonic() + timeout if timeout else None
        if deadline is not None and execution.resumes and execution.started_at and not getattr(execution, "retry_pending", False):
            # Resumed after a parked wait: its timeout counts from its first start (a new
            # attempt's, from its own).
            deadline -= (_now() - execution.started_at).total_seconds()
        frame = Frame(execution_id, deadline, timeout, execution)
        with self.lock:
            self.frames.append(frame)
        try:
            yield frame
        finally:
            with self.lock:
                self.frames.remove(frame)
                self.terminated.discard(execution_id)
                self.paused.discard(execution_id)

    @contextlib.contextmanager
    def interruptible(self, allowed: bool = True) -> Iterator[None]:
        """Allow (or forbid) interrupts in the innermost frame while the block runs."""
        frame = self.frames[-1] if self.frames else None
        if frame is None:
            yield
            return
        frame.interruptible.append(allowed)
        try:
            if allowed:
                self.raise_if_terminated()
            yield
        finally:
            frame.interruptible.pop()

    def frame_of(self, execution_id: int) -> Frame | None:
        for frame in reversed(self.frames):
            if frame.execution_id == execution_id:
                return frame
        return None

    def current(self, execution_id: int) -> Any:
        """The row object of a frame running here, or None."""
        for frame in reversed(self.frames):
            if frame.execution_id == execution_id:
                return frame.execution
        return None

    def is_terminated(self, execution_id: int) -> bool:
        return execution_id in self.terminated

    def any_terminated(self) -> bool:
        # No lock: the signal handler calls this, and may run while the main thread holds it.
        return any(f.execution_id in self.terminated for f in list(self.frames))

    def raise_if_terminated(self) -> None:
        if self.any_terminated():
            raise ExecutionTerminated()

    def mark_terminated(self, execution_ids: list[int] | set[int]) -> bool:
        """Note executions as cancelled or timed out; interrupt if one runs here."""
        with self.lock:
            local = {f.execution_id for f in self.frames} & set(execution_ids)
            self.terminated |= local
            frame = self.frames[-1] if self.frames else None
            host = frame.host if local and frame is not None else None
            interrupt = bool(local) and frame is not None and frame.interruptible[-1]
        if host is not None:  # the flow's code runs in its host: stop it there
            host.interrupt()
        elif interrupt and self._signals_ready:
            signal.pthread_kill(threading.main_thread().ident or 0, INTERRUPT_SIGNAL)
        return bool(local)

    def _on_signal(self, signum: int, _frame: object) -> None:
        frame = self.frames[-1] if self.frames else None
        if frame is not None and frame.interruptible[-1] and self.any_terminated():
            raise ExecutionTerminated()

    # --- watcher thread ------------------------------------------------------------------
    def _watch(self) -> None:
        me = threading.current_thread()
        heartbeat_every = float(settings.AUTOMATION["HEARTBEAT_SECONDS"])
        next_heartbeat = time.monotonic() + heartbeat_every
        pubsub = None
        while self._thread is me:  # replaced after a stall: leave to the new one
            self._turned_at = time.monotonic()
            try:
                if pubsub is None:
                    pubsub = notify.client().pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(
                        notify.cancel_channel(), notify.park_channel(), notify.pause_channel(),
                        notify.flows_channel(),
                    )
                    flow_cache.listening(True)  # from here on it hears every change
                    # A cancel announced before the subscription held reached nobody: the
                    # rows it ended say so (and each heartbeat looks again, see _heartbeat).
                    self._stop_the_ended()
                message = pubsub.get_message(timeout=0.25)
                if message and message.get("type") == "message":
                    self._heard(message["channel"].decode(), message["data"])
                self._enforce_deadlines()
                if time.monotonic() >= next_heartbeat:
                    next_heartbeat = time.monotonic() + heartbeat_every
                    self._heartbeat()
            except Exception:  # the watcher must outlive a Redis or database hiccup
                flow_cache.listening(False)  # changes go unheard until it subscribes again
                log.exception("execution guard hiccup; retrying")
                with contextlib.suppress(Exception):
                    if pubsub is not None:
                        pubsub.close()
                pubsub = None
                with contextlib.suppress(Exception):  # a second fault must not end the watcher
                    close_old_connections()
                time.sleep(1)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()
        with contextlib.suppress(Exception):  # this thread's own, opened by its heartbeats
            connection.close()

    def _heard(self, channel: str, data: bytes) -> None:
        if channel == notify.flows_channel():  # a flow changed: what this process keeps goes
            flow_cache.clear()
            return
        ids = set(json.loads(data))
        if channel == notify.park_channel():
            with self.lock:
                if ids & {f.execution_id for f in self.frames}:
                    self.park_requested = True
        elif channel == notify.pause_channel():
            with self.lock:
                self.paused |= ids & {f.execution_id for f in self.frames}
        else:
            self.mark_terminated(ids)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        with self.lock:
            due = [
                f for f in self.frames
                if f.deadline is not None and f.deadline <= now and f.execution_id not in self.terminated
            ]
        for frame in due:
            ended = end_timed_out(frame.execution_id, frame.timeout or 0)
            self.mark_terminated(ended)

    def _heartbeat(self) -> None:
        with self.lock:
            ids = [f.execution_id for f in self.frames]
        if ids:
            # Rows another transaction holds are skipped, not waited for: the watcher must
            # never block, or cancels and timeouts stop arriving in this process.
            with transaction.atomic():
                free = Execution.objects.select_for_update(skip_locked=True).filter(pk__in=ids)
                Execution.objects.filter(pk__in=free.values("pk")).update(heartbeat_at=_now())
            self._stop_the_ended()
        if connection.connection is not None:  # opened by the queries above, some beat
            connection.close_if_unusable_or_obsolete()

    def _stop_the_ended(self) -> None:
        """Interrupt the frames whose rows were asked to stop or ended by someone else (a
        cancel, the reconciler) whose notice this process missed: it was not subscribed yet, or Redis
        was away; and those whose rows were deleted (nothing could record their end). A
        frame's own end is recorded after the frame left, so it is never here."""
        with self.lock:
            ids = {f.execution_id for f in self.frames if f.execution_id not in self.terminated}
        if not ids:
            return
        going_on = Execution.objects.filter(pk__in=ids, stop_status="").exclude(status__in=Execution.ENDED)
        ended = sorted(ids - set(going_on.values_list("pk", flat=True)))
        if ended:
            log.warning("executions %s were stopped, ended or deleted elsewhere; stopping them here", ended)
            self.mark_terminated(ended)


def _now():  # type: ignore[no-untyped-def]
    return timezone.now()


_guard: ProcessGuard | None = None


def guard() -> ProcessGuard:
    """The guard of this process (a forked child gets a fresh one)."""
    global _guard
    if _guard is None or _guard.pid != os.getpid():
        _guard = ProcessGuard()
    return _guard
