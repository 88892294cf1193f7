"""Flow hosts: flow code runs in a process of its own, reaching the engine only by the port.

A worker process starts one host factory (flow_api.host.zygote: a clean interpreter with
an allow-listed environment) and keeps one warm spare host from it. Each top-level FLOW or
SCRIPT execution takes a host, which also runs the synchronous children it runs inline
(same user, same mode). When the execution ends, the host kills everything the flow
started; a host in a PID namespace of its own that cleaned up (flow_api.host.runtime,
`Host._reset`) is kept idle for the next execution of the same user and mode, up to
FLOW_HOST_MAX_RUNS; any other is killed. A host never serves two users or two modes.

While a host runs flow code, this process serves its flow_api calls (`_serve_call`) on
the engine's port, checking that each names an execution the flow may touch. A cancel or
timeout interrupts the host (SIGUSR2, as the guard did in-process before); a flow that
goes on past CANCEL_GRACE_SECONDS has its host killed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from django.conf import settings

import flow_api
from flow_api import exceptions
from flow_api.host import channel
from flow_api.host.runtime import INTERRUPT_SIGNAL, PORT_CALLS

from ..models import Execution, Message
from . import start, stored, waiting
from .guard import guard
from .isolation import Isolation, isolation
from .records import record

log = logging.getLogger(__name__)

# flow_api's own exceptions cross the port by name; anything else becomes InternalError.
_FLOW_API_ERRORS = (
    exceptions.FlowApiError, exceptions.ExecutionEnded, exceptions.ExecutionParked,
    exceptions.ExecutionTerminated,
)


_START_BATCH = 500  # run_async children started by one statement at most


class HostLost(Exception):
    """The host ended (killed, crashed, out of memory) or broke the protocol."""


def max_message_bytes() -> int:
    """The largest message a host may send: room for the largest output_value (a request
    body's limit), a log's worth and a file (base64), written as ASCII JSON (escapes may
    double text; base64 has none: 4/3 of the file, so a file up to 1.5 times its limit
    gets the engine's refusal naming that limit)."""
    largest = max(int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE), int(settings.AUTOMATION["LOG_MAX_BYTES"]),
                  int(settings.AUTOMATION["MAX_FILE_BYTES"]))  # a file as base64, with room
    return largest * 2 + 65_536


# --- the factory and its hosts -----------------------------------------------------------
def _flow_environment() -> dict[str, str]:
    names = ["PATH", "LANG", "LC_ALL", "TZ", *settings.AUTOMATION["FLOW_ENV"]]
    return {name: os.environ[name] for name in names if name in os.environ}


class _Factory:
    """The zygote of this worker process (started on first need, restarted if it died)."""

    def __init__(self, iso: Isolation) -> None:
        knobs = settings.AUTOMATION
        base = Path(tempfile.gettempdir()) / f"automation-flow-hosts-{os.geteuid()}"
        base.mkdir(mode=0o711, exist_ok=True)
        os.chmod(base, 0o711)  # the flow user may enter its own home, not list the others
        self.control, theirs = socket.socketpair()
        env = _flow_environment()
        config: dict[str, Any] = {
            "control_fd": theirs.fileno(), "uid": iso.uid, "gid": iso.gid, "home_base": str(base),
            "env": env,
            "limits": {
                "memory_mb": knobs["FLOW_MAX_MEMORY_MB"], "processes": knobs["FLOW_MAX_PROCESSES"],
                "open_files": knobs["FLOW_MAX_OPEN_FILES"],
                "log_entry_max_bytes": knobs["LOG_ENTRY_MAX_BYTES"],
                "max_message_bytes": max_message_bytes(),
            },
        }
        root = str(Path(flow_api.__file__).resolve().parent.parent)
        boot = "import sys; sys.path.insert(0, sys.argv[1]); from flow_api.host.zygote import main; main(sys.argv[2])"
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", boot, root, json.dumps(config)],
            env=env, cwd=str(base), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        hello = channel.receive(self.control, timeout=30)
        if not hello or hello.get("op") != "hello":
            self.close()
            raise HostLost("the flow host factory did not start")
        self.pid_namespace = bool(hello.get("pid_namespace"))

    def alive(self) -> bool:
        return self.process.poll() is None

    def new_host(self) -> Host:
        mine, theirs = socket.socketpair()
        try:
            socket.send_fds(self.control, [b"h"], [theirs.fileno()])
        finally:
            theirs.close()
        return Host(mine)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.control.close()
        with contextlib.suppress(OSError):
            self.process.kill()
            self.process.wait(timeout=5)


class Host:
    """One flow host: its socket, and once it said it is ready, its pid and home."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pid = 0
        self.home = ""
        self.key: tuple[Any, ...] = ()
        self.interrupted_at: float | None = None
        self.closed = False
        self.runs = 0  # top-level executions it ran (a host that cleaned up may run more)
        self.unread: dict[str, Any] | None = None  # read while batching starts, not served yet
        self.idle_since = 0.0

    def ready(self) -> Host:
        hello = channel.receive(self.sock, timeout=30, max_bytes=4096)
        if not hello or hello.get("op") != "ready":
            self.close()
            raise HostLost("a flow host did not start within 30 s")
        self.pid, self.home = int(hello["pid"]), str(hello["home"])
        return self

    def waiting(self) -> bool:
        """Whether this idle host still waits for work: it sends nothing unasked, so
        anything to read means it ended ("exit", or its socket closed)."""
        if self.closed:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def interrupt(self) -> None:
        """Stop the flow's own code where it stands (called by the guard's thread too)."""
        if self.interrupted_at is None:
            self.interrupted_at = time.monotonic()
        with contextlib.suppress(OSError):
            os.kill(self.pid, INTERRUPT_SIGNAL)

    def close(self) -> None:
        """Kill the host and everything in its session or PID namespace; remove its home."""
        if self.closed:
            return
        self.closed = True
        if self.pid:
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(OSError):
                    kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.home:
            for _ in range(3):  # processes of the namespace may still be dying
                shutil.rmtree(self.home, ignore_errors=True)
                if not os.path.exists(self.home):
                    break
                time.sleep(0.05)

    # --- running an execution ------------------------------------------------------------
    def run(self, execution: Execution, source: str, filename: str, code_key: str) -> dict[str, Any]:
        """Run `execution`'s handler here; return the host's "done" message."""
        frame = guard().frame_of(execution.pk)
        channel.send(self.sock, {
            "op": "run", "id": execution.pk, "record": record(execution), "key": code_key,
            "source": source, "filename": filename,
        })
        limit = max_message_bytes()
        _serving.append(self)
        try:
            while True:
                if frame is not None:
                    frame.host = self
                message = self.unread or channel.receive(self.sock, timeout=0.25, max_bytes=limit)
                self.unread = None
                if frame is not None:
                    frame.host = None
                if message is None:
                    self._enforce_cancel()
                    continue
                op = message.get("op")
                if op == "call":
                    self._serve_call(execution, message)
                elif op == "start":
                    self._start_children(execution, message, limit)
                elif op == "done" and message.get("id") == execution.pk:
                    return message
                elif op == "exit":
                    self.close()
                    raise HostLost(_exit_text(message.get("code")))
                else:
                    raise HostLost(f"the flow host sent an unexpected message ({str(op)[:40]!r})")
        except channel.ChannelClosed:
            self.close()
            raise HostLost(
                "the flow's process ended without an answer: it was killed, crashed, or "
                "called os._exit (its memory limit is "
                f"{settings.AUTOMATION['FLOW_MAX_MEMORY_MB']} MB, AUTOMATION_FLOW_MAX_MEMORY_MB)"
            ) from None
        except channel.MessageTooLarge as exc:
            self.close()
            raise HostLost(f"the flow sent {exc}; its process was stopped") from None
        except (ValueError, KeyError, TypeError) as exc:
            self.close()
            raise HostLost(f"the flow host sent a malformed message ({type(exc).__name__})") from None
        except BaseException:
            self.close()  # an engine fault or the worker stopping: the host goes with it
            raise
        finally:
            if frame is not None:
                frame.host = None
            _serving.pop()

    def _enforce_cancel(self) -> None:
        g = guard()
        g.check_watcher()
        if not g.any_terminated():
            return
        grace = float(settings.AUTOMATION["CANCEL_GRACE_SECONDS"])
        if self.interrupted_at is not None and time.monotonic() - self.interrupted_at > grace:
            self.close()
            raise HostLost(
                f"the flow did not stop within {grace:g} s of being cancelled; its process "
                "was killed (AUTOMATION_CANCEL_GRACE_SECONDS)"
            )
        self.interrupt()  # again: the first may have come while it was in a port call

    def _serve_call(self, execution: Execution, message: dict[str, Any]) -> None:
        method = message.get("method")
        args, kwargs = message.get("args") or [], message.get("kwargs") or {}
        try:
            if method not in PORT_CALLS or not isinstance(args, list) or not isinstance(kwargs, dict):
                raise exceptions.FlowApiError(f"the engine has no call {str(method)[:40]!r}")
            _allowed(execution, str(method), args, kwargs)
            # Paused by a user or a flow (this one, or one that runs it inline): hold here.
            # The notice tells a running flow; a wait that ended PAUSED marked its row object.
            g = guard()
            running_here = {f.execution_id for f in g.frames}
            marked = {f.execution_id for f in g.frames
                      if getattr(f.execution, "status", None) == Execution.Status.PAUSED}
            for paused in (g.paused & running_here) | marked:
                waiting.hold_while_paused(paused)
            if method != "start_child" or kwargs.get("run", True):
                start.flush_batched()  # the run=False children it created are written first
            value = getattr(flow_api.port.get(), str(method))(*args, **kwargs)
        except HostLost:
            raise
        except _FLOW_API_ERRORS as exc:
            self._answer_error(exc)
            return
        except TypeError as exc:  # the flow called with arguments the call does not take
            self._answer_error(exceptions.FlowApiError(f"{method}: {exc}"))
            return
        except ValueError as exc:  # a value the engine refused, naming the field
            self._answer_error(exceptions.InvalidInputError(str(exc)))
            return
        except Exception as exc:
            log.exception("flow_api call %s of execution %s failed", method, execution.pk)
            self._answer_error(exceptions.InternalError(f"{type(exc).__name__}: {exc}"))
            return
        channel.send(self.sock, {"op": "result", "value": value})

    def _start_children(self, execution: Execution, message: dict[str, Any], limit: int) -> None:
        """`run_async` of the children the flow sent, with those it sent right after (a
        loop of run_async): one statement for all. Nothing is answered; the first other
        message is kept for the serve loop, so the flow's calls are served in order."""
        caller, ids = message.get("caller"), list(message.get("ids") or [])
        while len(ids) < _START_BATCH and select.select([self.sock], [], [], 0)[0]:
            following = channel.receive(self.sock, max_bytes=limit)
            if following is None or following.get("op") != "start" or following.get("caller") != caller:
                self.unread = following
                break
            ids.extend(following.get("ids") or [])
        try:
            # The caller is the host's word: checked as a call naming it would be.
            _allowed(execution, "start_children", [caller], {})
            flow_api.port.get().start_children(int(caller), [int(i) for i in ids])  # type: ignore[arg-type]
        except exceptions.PermissionDenied as exc:
            log.warning("execution %s: run_async refused: %s", execution.pk, exc)
        except (exceptions.ExecutionTerminated, exceptions.ExecutionEnded):
            pass  # its flow was cancelled meanwhile: its children are not started
        except Exception:
            log.exception("could not start the children %s of execution %s", ids[:20], caller)

    def _answer_error(self, exc: BaseException) -> None:
        args = [exc.status, exc.message] if isinstance(exc, exceptions.ExecutionEnded) else [
            str(a) for a in exc.args]
        channel.send(self.sock, {"op": "error", "error": type(exc).__name__, "args": args})


def _exit_text(code: Any) -> str:
    """How the flow's process ended, as its execution's message says it."""
    memory = settings.AUTOMATION["FLOW_MAX_MEMORY_MB"]
    if not isinstance(code, int):
        return "the flow's process ended without an answer"
    if code == -signal.SIGKILL:
        return (
            "the flow's process was killed (SIGKILL) before it answered; a process past its "
            f"memory limit of {memory} MB (AUTOMATION_FLOW_MAX_MEMORY_MB) is killed so"
        )
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"the flow's process died of {signal.Signals(-code).name} before it answered"
        return f"the flow's process died of signal {-code} before it answered"
    return f"the flow's process exited with code {code} before it answered (os._exit or a crash)"


# Calls that name an execution, and which argument does. "own": the calling execution or
# one of its family (the same root); "view"/"change": also any other the execution's user
# may see or change.
_EXECUTION_ARGUMENTS = {
    "start_child": ("parent_id", 0, "self"), "run_deferred": ("execution_id", 0, "own"),
    "wait": ("waiter_id", 0, "self"), "read": ("execution_id", 0, "view"),
    "cancel": ("execution_id", 0, "change"), "pause": ("execution_id", 0, "change"),
    "resume": ("execution_id", 0, "change"), "save": ("execution_id", 0, "own"),
    "log": ("execution_id", 0, "own"), "sleep": ("execution_id", 0, "self"),
    "user": ("execution_id", 0, "own"), "message": ("execution_id", 1, "self"),
    "setting_lock": ("execution_id", 0, "self"),  # a lock is taken in one's own name only
    "start_children": ("caller_id", 0, "own"),  # run_async: children of one's own tree only
    # Files and records are read and changed as the calling execution's user (stored.py).
    "file": ("execution_id", 0, "self"), "records": ("execution_id", 0, "self"),
    "save_record": ("execution_id", 0, "self"),
    "save_schedule": ("execution_id", 0, "self"),  # owned by the calling execution's user
}


# Calls that read one flow, connection or webhook: its kind (None: the call's first
# argument, `kind`), and which argument names it.
_RECORD_READS = {
    "flow_record": ("flow", "key", 0), "connection_record": ("connection", "name", 0),
    "record_of": (None, "name", 1),
}


def _allowed(execution: Execution, method: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse a call that names an execution outside what the flow may touch, or reads or
    changes a record its user may not."""
    if method == "wait":
        ids = kwargs.get("ids", args[1] if len(args) > 1 else [])
        _may_touch_all(execution, ids if isinstance(ids, list) else [], "view")
    if method == "message" and kwargs.get("id") is not None:  # a form another execution asked?
        owner = Message.objects.filter(pk=kwargs["id"]).values_list("execution_id", flat=True).first()
        if owner is not None:
            _may_touch(execution, owner, "view")
    if method == "setting":  # reading or changing a setting needs its model permission (stored.py)
        op = kwargs.get("op", args[0] if args else None)
        name = kwargs.get("name", args[1] if len(args) > 1 else None)
        stored.require_setting(execution, str(op), str(name))
    if method == "setting_lock" and kwargs.get("op", args[1] if len(args) > 1 else None) == "acquire":
        # Taking a lock writes the setting (and creates a missing one): a change of it.
        name = kwargs.get("name", args[2] if len(args) > 2 else None)
        stored.require_setting(execution, "save", str(name))
    if method in _RECORD_READS:  # reading one record needs what listing them needs (stored.py)
        kind, argument, position = _RECORD_READS[method]
        if kind is None:
            kind = kwargs.get("kind", args[0] if args else None)
        name = kwargs.get(argument, args[position] if len(args) > position else None)
        stored.require(execution, str(kind), "view", "" if name is None else name)
    if method == "executions" and not _user_may(execution, "view"):
        raise exceptions.PermissionDenied(
            f"the user of execution {execution.pk} may not list executions")
    spec = _EXECUTION_ARGUMENTS.get(method)
    if spec is None:
        return
    name, position, scope = spec
    target = kwargs.get(name, args[position] if len(args) > position else None)
    if target is None and scope == "self" and method in ("wait", "message"):
        return
    _may_touch(execution, target, scope)


def _may_touch(execution: Execution, target: Any, scope: str) -> None:
    if target == execution.pk:
        return
    if scope != "self":
        root = Execution.objects.filter(pk=target).values_list("root_id", flat=True).first()
        if root is not None and root == (execution.root_id or execution.pk):
            return
        if scope in ("view", "change") and _user_may(execution, scope):
            return
    raise exceptions.PermissionDenied(
        f"execution {execution.pk} may not reach execution {str(target)[:20]}")


def _may_touch_all(execution: Execution, targets: list[Any], scope: str) -> None:
    """`_may_touch` for many (a wait for a thousand children): one query for their roots."""
    others = [t for t in targets if t != execution.pk]
    if not others:
        return
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in others):
        for target in others:  # something that is no id: refused by name below
            _may_touch(execution, target, scope)
        return
    root = execution.root_id or execution.pk
    roots = dict(Execution.objects.filter(pk__in=others).values_list("pk", "root_id"))
    outside = [t for t in others if roots.get(t) != root]
    if outside and not (scope in ("view", "change") and _user_may(execution, scope)):
        raise exceptions.PermissionDenied(
            f"execution {execution.pk} may not reach execution {str(outside[0])[:20]}")


def _user_may(execution: Execution, action: str) -> bool:
    user = execution.user
    return bool(user is not None and user.is_active and user.has_perm(f"executions.{action}_execution"))


# --- what the runner calls ---------------------------------------------------------------
_serving: list[Host] = []  # the hosts whose calls this process is serving, innermost last


class _Warm:
    """This process's factory, its spare host, and the hosts that ran an execution and may
    run another of the same user and mode, by that key (a forked child starts its own)."""

    pid = 0
    factory: _Factory | None = None
    spare: Host | None = None
    idle: OrderedDict[tuple[Any, ...], Host] = OrderedDict()


_IDLE_HOSTS = 4  # per worker process: more users or modes than this take a new host
_IDLE_SECONDS = 300.0  # an idle host unused this long is closed


_warm = _Warm()


def broken() -> bool:
    """Whether a host this process serves was lost (its outer executions go with it)."""
    return any(host.closed for host in _serving)


def run(execution: Execution, source: str, filename: str, code_key: str) -> dict[str, Any]:
    """Run the handler of a RUNNING FLOW or SCRIPT execution in a flow host."""
    key = (execution.user_id, execution.mode)
    if _serving and _serving[-1].key == key and not _serving[-1].closed:
        return _serving[-1].run(execution, source, filename, code_key)  # an inline child
    host = _take_host(key)
    done: dict[str, Any] = {}
    try:
        done = host.run(execution, source, filename, code_key)
        return done
    finally:
        host.runs += 1
        if (done.get("reusable") is True and host.interrupted_at is None
                and host.runs < settings.AUTOMATION["FLOW_HOST_MAX_RUNS"]):
            _keep_idle(host)
        else:
            host.close()
        _replenish()


def _take_host(key: tuple[Any, ...]) -> Host:
    if _warm.pid == os.getpid():
        idle = _warm.idle.pop(key, None)
        if idle is not None and idle.waiting():
            return idle
        if idle is not None:
            idle.close()
    try:
        if _warm.pid != os.getpid() or _warm.factory is None or not _warm.factory.alive():
            if _warm.pid == os.getpid():
                shut_down()
            _warm.pid, _warm.factory, _warm.spare = os.getpid(), _Factory(isolation()), None
            _warm.idle = OrderedDict()
        host, _warm.spare = _warm.spare or _warm.factory.new_host(), None
        host.key = key
        return host.ready()
    except (OSError, channel.ChannelClosed, ValueError) as exc:
        raise HostLost(f"a flow host could not be started: {exc}") from None


def _keep_idle(host: Host) -> None:
    """Keep a host that cleaned up after its execution for the next one of its key."""
    now = time.monotonic()
    host.idle_since = now
    _warm.idle[host.key] = host
    for key, other in list(_warm.idle.items()):
        if len(_warm.idle) > _IDLE_HOSTS or now - other.idle_since > _IDLE_SECONDS:
            del _warm.idle[key]
            other.close()


def _replenish() -> None:
    """Fork the spare for the next execution once this one has ended: it prepares and warms
    up while the worker records the end and waits for work, not beside a running flow."""
    if _warm.pid != os.getpid() or _warm.factory is None or _warm.spare is not None:
        return
    try:
        _warm.spare = _warm.factory.new_host()
    except OSError:  # the factory died: the next execution starts a new one
        _warm.spare = None


def shut_down() -> None:
    """Stop this process's factory and its spare host (the worker process stops)."""
    if _warm.pid != os.getpid():
        return
    if _warm.spare is not None:
        _warm.spare.close()
    for host in _warm.idle.values():
        host.close()
    _warm.idle = OrderedDict()
    if _warm.factory is not None:
        _warm.factory.close()
    _warm.factory = _warm.spare = None
