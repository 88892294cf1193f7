"""The flow host factory: a clean interpreter that forks one host per execution.

The worker starts this module with `python -I` and an environment of its allow-list
(executions.engine.hosts), so nothing here ever held the engine's settings, secrets or
database connection. It imports flow_api once, then forks a host for each socket the
worker sends over the control socket, which is why a warm host costs a fork, not an
interpreter's start.

Each host, before any flow code runs:
- gets a new PID namespace where the kernel allows it (so that when the host ends, the
  kernel ends everything the flow started, however it detached), else a session of its own;
- gets a private HOME and TMPDIR, and limits on memory, processes and open files;
- becomes the flow user (when the worker is root), with no supplementary groups,
  `no_new_privs` (no setuid program gives privileges back) and not dumpable (other hosts
  of the same user can neither trace it nor read its memory);
- dies with its parent (PR_SET_PDEATHSIG), so a lost worker leaves no host behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import resource
import signal
import socket
import sys
import tempfile
from typing import Any, NoReturn

from . import channel, runtime

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWPID = 0x20000000


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _new_pid_namespace() -> bool:
    return _libc.unshare(_CLONE_NEWPID) == 0


def main(config_json: str) -> None:
    config = json.loads(config_json)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    control = socket.socket(fileno=int(config["control_fd"]))
    # Probe once, in a throw-away child, whether hosts can have PID namespaces here.
    probe = os.fork()
    if probe == 0:
        os._exit(0 if _new_pid_namespace() else 1)
    _, status = os.waitpid(probe, 0)
    config["pid_namespace"] = os.waitstatus_to_exitcode(status) == 0
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # hosts are reaped by the kernel
    # What is loaded now is shared by every host: out of the collector's sight, its pages
    # stay shared after a fork instead of being copied when a collection touches them.
    gc.freeze()
    channel.send(control, {"op": "hello", "pid_namespace": config["pid_namespace"]})
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(control, 16, 4)
        except OSError:
            return
        if not fds:
            return  # the worker closed the control socket: it stopped
        for fd in fds:
            if os.fork() == 0:
                control.close()
                _host(fd, config)
            os.close(fd)


def _host(fd: int, config: dict[str, Any]) -> NoReturn:
    """In the forked child: fork the host, report it ready, and when it ends, how it
    ended; never returns. (This waiting parent stays root and runs no flow code.)"""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        sock = socket.socket(fileno=fd)
        home = _private_home(config)
        if config["pid_namespace"]:
            _new_pid_namespace()  # the host becomes the new namespace's first process
        pid = os.fork()
        if pid == 0:
            _serve(sock, home, config)
        channel.send(sock, {"op": "ready", "pid": pid, "home": home})
        code = _wait_for(pid)
        with contextlib.suppress(OSError, channel.ChannelClosed):
            channel.send(sock, {"op": "exit", "code": code})
    except BaseException:  # nothing may escape into the factory's loop
        pass
    os._exit(0)


def _wait_for(pid: int) -> int:
    """The host's exit code (negative: the signal that killed it)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue


def _private_home(config: dict[str, Any]) -> str:
    home = tempfile.mkdtemp(prefix="host-", dir=config["home_base"])
    if config.get("uid") is not None:
        os.chown(home, config["uid"], config["gid"])
    os.chmod(home, 0o700)
    return home


def _serve(sock: socket.socket, home: str, config: dict[str, Any]) -> NoReturn:
    code = 0
    try:
        _prepare(sock, home, config)
        host = runtime.Host(sock, config["limits"])
        host.warm_up()
        host.serve()
    except BaseException:
        code = 70
    os._exit(code)


def _prepare(sock: socket.socket, home: str, config: dict[str, Any]) -> None:
    os.setsid()  # a session of its own: the worker kills it and its processes as one group
    null = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):  # a flow's subprocesses write nowhere the worker reads
        os.dup2(null, std)
    os.close(null)
    os.closerange(3, sock.fileno())
    os.closerange(sock.fileno() + 1, 1 << 16)
    os.chdir(home)
    env = dict(config["env"], HOME=home, TMPDIR=home, TMP=home, TEMP=home)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = home
    limits = config["limits"]
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)
    memory = limits["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if config.get("uid") is not None:
        os.setgroups([])
        os.setgid(config["gid"])
        os.setuid(config["uid"])
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # setuid clears it
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    _prctl(_PR_SET_DUMPABLE, 0)
    sys.argv = ["flow-host"]


if __name__ == "__main__":
    main(sys.argv[1])
