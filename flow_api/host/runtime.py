"""The flow host's side: run handlers, and carry each flow_api call to the worker.

A host runs one top-level execution and the synchronous children it runs inline, each
a nested "run" that arrives while the parent waits for its call's answer. What a handler
did comes back as one "done" message, whose "kind" says how it ended:

- returned: the handler returned; "output" is its dict (or None);
- ended: `this.success()` / `this.error()`, with "status" and "message";
- parked: a wait was parked (the engine runs the handler again when it is answered);
- terminated: the execution (or an ancestor) was cancelled or timed out;
- error: "message" names the cause and the flow's line, "traceback" shows the flow's frames.
"""

from __future__ import annotations

import _thread
import contextlib
import inspect
import io
import json
import linecache
import os
import shutil
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from types import CodeType, TracebackType
from typing import Any

import flow_api
from flow_api import exceptions, port
from flow_api.exceptions import ExecutionEnded, ExecutionParked, ExecutionTerminated, FlowApiError
from flow_api.values import a_type, json_safe

from . import channel

INTERRUPT_SIGNAL = signal.SIGUSR2

# The port's calls, by name: the worker serves exactly these (executions.engine.hosts).
PORT_CALLS = frozenset(name for name in vars(port.Port) if not name.startswith("_"))

# What a call's argument is called in the engine's messages, for errors that name it.
_ARGUMENT_NAMES = {
    "inputs": "input_value", "output_value": "output_value", "data": "the log's data",
    "value": "the setting's value", "fields": "the schedule",
}


_CODE_CACHE_SIZE = 64  # compiled scripts a reused host keeps
_WARM_UP_FILE = "<warm-up>"
_WARM_UP = """
def handler(system, this):
    inputs = this.get('input_value')
    print(end='')
    return {'inputs': inputs, 'id': this.id}
"""


class ScriptError(Exception):
    """The script cannot run: it does not compile, has no handler, or a wrong signature."""


class _Frame:
    def __init__(self, execution_id: int) -> None:
        self.execution_id = execution_id
        self.calls = 0  # > 0 while a port call waits for the worker: no interrupt then
        self.interrupted = False


class Host:
    """Serves one socket to the worker; installed as flow_api's port."""

    def __init__(self, sock: socket.socket, limits: dict[str, Any]) -> None:
        self.sock = sock
        self.limits = limits
        self.home = os.getcwd()
        self.environment = dict(os.environ)
        self.frames: list[_Frame] = []
        self.code: dict[str, tuple[CodeType, str]] = {}
        port.install(self)  # type: ignore[arg-type]
        signal.signal(INTERRUPT_SIGNAL, self._on_interrupt)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in PORT_CALLS:
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, args, kwargs)

    def warm_up(self) -> None:
        """Run a trivial handler once, before the worker sends work. A forked host pays for
        its first touch of each page it shares with the factory (copy on write: about 2 ms
        for a handler's path); paid here, while the host waits as the worker's spare, the
        first execution does not pay it."""
        message = {"op": "run", "id": 0, "key": "warm-up", "filename": _WARM_UP_FILE,
                   "source": _WARM_UP, "record": {"id": 0, "input_value": {}}}
        frame = _Frame(0)
        self.frames.append(frame)
        try:
            outcome = self._outcome(json.loads(channel.encode(message)[4:]), frame)
        finally:
            self.frames.pop()
        channel.encode({"op": "done", "id": 0, **outcome})
        self.code.pop("warm-up", None)
        linecache.cache.pop(_WARM_UP_FILE, None)

    def serve(self) -> None:
        """Run what the worker sends until it closes the socket."""
        while True:
            try:
                message = channel.receive(self.sock)
            except channel.ChannelClosed:
                return
            if message and message.get("op") == "run":
                self.run(message)

    # --- the port ------------------------------------------------------------------------
    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        message = {"op": "call", "method": name, "args": list(args), "kwargs": kwargs}
        try:
            frame = channel.encode(message)
        except (TypeError, ValueError):  # name the argument JSON cannot hold
            for key, value in kwargs.items():
                json_safe(value, _ARGUMENT_NAMES.get(key, key))
            for value in args:
                json_safe(value, "an argument")
            raise
        limit = int(self.limits["max_message_bytes"])
        if len(frame) > limit:  # the engine would not read it: refuse it here, in the flow
            raise FlowApiError(
                f"the arguments of this {name} call are {len(frame)} bytes as JSON, over "
                f"the limit of {limit} bytes that one call may send"
            )
        top = self.frames[-1] if self.frames else None
        if top is not None:
            top.calls += 1
        try:
            self.sock.sendall(frame)
            while True:
                answer = channel.receive(self.sock)
                if answer is None:
                    continue
                op = answer.get("op")
                if op == "result":
                    return answer.get("value")
                if op == "error":
                    raise _rebuilt(answer)
                if op == "run":  # a synchronous child, run inline while this call waits
                    self.run(answer)
        finally:
            if top is not None:
                top.calls -= 1

    def _reset(self, outcome: dict[str, Any]) -> bool:
        """After a top-level execution: end what its flow left behind, and say whether this
        host may run another execution (the worker gives it only one of the same user and
        mode). Only in a PID namespace of its own can a host find every process the flow
        started, however it detached: elsewhere a host runs one execution."""
        if os.getpid() != 1 or outcome.get("kind") == "terminated" or outcome.get("memory"):
            return False
        with contextlib.suppress(OSError):  # as the namespace's init, it is spared itself
            os.kill(-1, signal.SIGKILL)
        deadline = time.monotonic() + 1.0
        while True:  # the killed (and any orphan reparented here) are reaped by their init
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.001)
        if _thread._count():  # a thread the flow started still runs
            return False
        try:
            signal.signal(INTERRUPT_SIGNAL, self._on_interrupt)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.environ.clear()
            os.environ.update(self.environment)
            os.chdir(self.home)
            for entry in os.scandir(self.home):  # the next execution finds an empty home
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        except (OSError, ValueError):
            return False
        while len(self.code) > _CODE_CACHE_SIZE:
            self.code.pop(next(iter(self.code)))
        return _resident_mb() < int(self.limits["memory_mb"]) // 4

    def start_children(self, caller_id: int, ids: list[int]) -> None:
        """`run_async`: sent without waiting for an answer, so that a flow starting many
        children pays no round trip for each; the worker starts what arrived together in
        one statement, and serves the flow's next call after them."""
        self.sock.sendall(channel.encode({"op": "start", "caller": int(caller_id),
                                          "ids": [int(i) for i in ids]}))

    def _on_interrupt(self, signum: int, _frame: object) -> None:
        top = self.frames[-1] if self.frames else None
        if top is not None and top.calls == 0:  # the flow's own code runs: stop it there
            top.interrupted = True
            raise ExecutionTerminated()
        # In a port call, the worker answers it with ExecutionTerminated, or sends again.

    # --- running a handler ---------------------------------------------------------------
    def run(self, message: dict[str, Any]) -> None:
        frame = _Frame(int(message["id"]))
        self.frames.append(frame)
        try:
            outcome = self._outcome(message, frame)
        finally:
            self.frames.pop()
        if not self.frames:  # a top-level execution ended: may this host run the next one?
            outcome["reusable"] = self._reset(outcome)
        try:
            done = channel.encode({"op": "done", "id": frame.execution_id, **outcome})
        except (TypeError, ValueError) as exc:  # json_safe let it pass; still say why
            done = channel.encode({"op": "done", "id": frame.execution_id, "kind": "error",
                                   "message": f"the flow's outcome cannot be sent: {exc}"})
        self.sock.sendall(done)

    def _outcome(self, message: dict[str, Any], frame: _Frame) -> dict[str, Any]:
        filename = message.get("filename", "<flow>")
        try:
            with flow_output(frame.execution_id, int(self.limits["log_entry_max_bytes"])):
                handler, takes_inputs = self._handler(message)
                this = flow_api.Execution(message["record"])
                system = flow_api.System(frame.execution_id)
                args: tuple[Any, ...] = (system, this)
                if takes_inputs:
                    args = (system, this, dict(message["record"].get("input_value") or {}))
                result = handler(*args)
        except ExecutionParked:
            return {"kind": "parked"}
        except ExecutionEnded as end:
            return {"kind": "ended", "status": end.status, "message": end.message}
        except ExecutionTerminated:
            return {"kind": "terminated"}
        except ScriptError as exc:
            return {"kind": "error", "message": str(exc)}
        except MemoryError:
            limit = self.limits.get("memory_mb")
            return {"kind": "error", "memory": True, "message": (
                f"the flow ran out of memory: its limit is {limit} MB "
                "(AUTOMATION_FLOW_MAX_MEMORY_MB)"
            )}
        except SystemExit as exc:
            return {"kind": "error", "message": describe_base(exc, filename)}
        except Exception as exc:
            return {"kind": "error", "message": describe(exc, filename),
                    "traceback": flow_traceback(exc, filename),
                    "error_types": [kind.__name__ for kind in type(exc).__mro__[:-1]]}
        except BaseException as exc:  # KeyboardInterrupt, GeneratorExit, BaseException...
            if frame.interrupted:  # the flow turned the cancel into something else
                return {"kind": "terminated"}
            return {"kind": "error", "message": describe_base(exc, filename),
                    "traceback": flow_traceback(exc, filename)}
        if isinstance(result, ExecutionEnded):  # `return this.success()` never gets here
            return {"kind": "ended", "status": result.status, "message": result.message}
        if result is None:
            return {"kind": "returned", "output": None}
        if not isinstance(result, dict):  # never dropped in silence: the flow meant it
            return {"kind": "error", "message": (
                f"the handler returned {a_type(result)}; it may return a dict of "
                "outputs (output_value) or None"
            )}
        try:
            return {"kind": "returned", "output": json_safe(result, "output_value")}
        except FlowApiError as exc:
            return {"kind": "error", "message": f"the handler's returned outputs: {exc}"}

    def _handler(self, message: dict[str, Any]) -> tuple[Callable[..., Any], bool]:
        key, filename = str(message["key"]), str(message["filename"])
        if key not in self.code:
            self.code[key] = (_compile(str(message["source"]), filename), filename)
        code, filename = self.code[key]
        # flow_api is bound without an import, as Cloudomation's flow template assumes.
        namespace: dict[str, Any] = {
            "__name__": f"flow_{message['id']}", "__file__": filename, "flow_api": flow_api,
        }
        try:
            exec(code, namespace)
        except Exception as exc:
            raise ScriptError(describe(exc, filename, "while loading the script")) from None
        except (ExecutionEnded, ExecutionParked, ExecutionTerminated, MemoryError):
            raise
        except BaseException as exc:  # SystemExit, KeyboardInterrupt... at the top level
            raise ScriptError(describe_base(exc, filename)) from None
        handler = namespace.get("handler")
        if not callable(handler):
            raise ScriptError(f"the script defines no handler(system, this) function ({filename})")
        try:
            params = [
                p for p in inspect.signature(handler).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            params = []
        if len(params) not in (2, 3):
            raise ScriptError(
                "handler must take (system, this) or (system, this, inputs); "
                f"it takes {len(params)} argument(s) ({filename})"
            )
        return handler, len(params) == 3


def _resident_mb() -> int:
    """This process's resident memory now, in MB (0 where /proc does not tell)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1 << 20)
    except (OSError, ValueError, IndexError):
        return 0


def _rebuilt(answer: dict[str, Any]) -> BaseException:
    """The exception the worker's answer names, as one of flow_api's own."""
    kind = getattr(exceptions, str(answer.get("error")), None)
    args = answer.get("args") or []
    if isinstance(kind, type) and issubclass(kind, ExecutionEnded):
        return kind(*args[:2]) if len(args) >= 2 else kind("ENDED_ERROR", str(args))
    if isinstance(kind, type) and issubclass(kind, BaseException):
        try:
            return kind(*args)
        except TypeError:
            return kind(" ".join(map(str, args)))
    return FlowApiError(" ".join(map(str, args)))


def _compile(source: str, filename: str) -> CodeType:
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise ScriptError(f"SyntaxError: {exc.msg} (line {exc.lineno} of {filename})") from None
    except ValueError as exc:
        raise ScriptError(f"the script cannot be compiled: {exc}") from None
    # So that tracebacks show the flow's own lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return code


def _flow_line(tb: TracebackType | None, filename: str) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == filename:
            line = lineno
    return line


def describe(exc: BaseException, filename: str, where: str = "") -> str:
    line = _flow_line(exc.__traceback__, filename)
    text = f"{type(exc).__name__}: {exc}"
    if line is not None:
        return f"{text} (line {line} of {filename})"
    return f"{text} ({where or 'outside the flow script'})"


def describe_base(exc: BaseException, filename: str) -> str:
    """A BaseException from flow code: its name, its text if any, and the flow's line."""
    line = _flow_line(exc.__traceback__, filename)
    if isinstance(exc, SystemExit):
        where = f" (line {line} of {filename})" if line is not None else ""
        return f"the flow called sys.exit({exc.code!r}){where}"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    where = f"line {line} of {filename}" if line is not None else "outside the flow script"
    return f"{text} raised by the flow ({where})"


def flow_traceback(exc: BaseException, filename: str) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


class _FlowStream(io.TextIOBase):
    """sys.stdout or sys.stderr while a flow runs: each line goes into the execution's log
    through the port's `log`, under the same caps as `this.log`."""

    def __init__(self, execution_id: int, level: str, entry_max: int) -> None:
        super().__init__()
        self.execution_id = execution_id
        self.level = level
        self.entry_max = entry_max
        self.pending: list[str] = []
        self.size = 0
        self.sending = False  # what the log call itself writes is not logged again

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        if self.sending:
            return len(text)
        self.pending.append(text)
        self.size += len(text)
        if "\n" in text or self.size > self.entry_max:
            self._send(final=False)
        return len(text)

    def flush(self) -> None:
        self._send(final=True)

    def _send(self, *, final: bool) -> None:
        buffered = "".join(self.pending)
        if final or self.size > self.entry_max:
            entry, rest = buffered, ""  # a long line without an end goes in as it is
        else:  # whole lines go in now, the unfinished last one waits for its end
            cut = buffered.rfind("\n") + 1
            entry, rest = buffered[:cut], buffered[cut:]
        self.pending, self.size = ([rest], len(rest)) if rest else ([], 0)
        if not entry:
            return
        # PostgreSQL's text holds no NUL and no lone surrogate: show them escaped instead.
        entry = entry.removesuffix("\n").replace("\x00", "\\x00")
        entry = entry.encode("utf-8", "backslashreplace").decode("utf-8")
        self.sending = True
        try:
            port.get().log(self.execution_id, self.level, entry, {})
        finally:
            self.sending = False


@contextlib.contextmanager
def flow_output(execution_id: int, entry_max: int) -> Iterator[None]:
    """Capture the flow's print() and stderr into its execution log while the block runs
    (a line longer than `entry_max` goes in as an entry of its own)."""
    streams = (_FlowStream(execution_id, "INFO", entry_max),
               _FlowStream(execution_id, "WARNING", entry_max))
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = streams
    try:
        yield
    except BaseException:
        with contextlib.suppress(BaseException):  # the flow's own exception is what counts
            for stream in streams:
                stream.flush()
        raise
    else:
        for stream in streams:  # over the log's cap: FlowApiError, as this.log would raise
            stream.flush()
    finally:
        sys.stdout, sys.stderr = saved
