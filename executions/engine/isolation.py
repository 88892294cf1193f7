"""How flow code is isolated on this worker: what the start-up log, /ready and the
dashboard say, and whether flows may run at all (executions.engine.hosts runs them)."""

from __future__ import annotations

import os
import pwd
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class Isolation:
    level: str  # "full", "none", or "refused" (full was asked for and is not possible)
    description: str  # for the start-up log, /ready and the dashboard
    uid: int | None = None
    gid: int | None = None

    @property
    def refused(self) -> bool:
        return self.level == "refused"


def _searchable_by(path: Path, uid: int, gid: int, need: int) -> bool:
    """Whether user `uid` could reach `path` (every directory on the way searchable) and
    have the `need` bits (stat.S_IROTH-style, for "other") on it."""
    parts = [path, *path.parents]
    for i, part in enumerate(parts):
        try:
            info = part.stat()
        except OSError:
            return False
        bits = need if i == 0 else stat.S_IXOTH
        if info.st_uid == uid:
            bits <<= 6
        elif info.st_gid == gid:
            bits <<= 3
        if info.st_mode & bits != bits:
            return False
    return True


def _python_dirs() -> list[Path]:
    import flow_api as package

    return [Path(sys.base_prefix), Path(sys.prefix), Path(package.__file__).resolve().parent]


def _has_pid_namespaces() -> bool:
    """CAP_SYS_ADMIN in the effective set: hosts get PID namespaces of their own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 21))
    except OSError:
        pass
    return False


def _check_isolation() -> Isolation:
    knobs = settings.AUTOMATION
    cleanup = "each host in its own PID namespace" if _has_pid_namespaces() else (
        "each host in its own session (no PID namespaces here: a flow that leaves its "
        "session can outlive its host)"
    )
    limits = f"memory {knobs['FLOW_MAX_MEMORY_MB']} MB"
    if knobs["FLOW_ISOLATION"] == "none":
        return Isolation("none", (
            "none: flow code runs as the worker's own user (AUTOMATION_FLOW_ISOLATION=none), "
            f"in hosts without the engine's environment; {cleanup}; {limits}. "
            "For a single trusted user only"
        ))
    name = knobs["FLOW_USER"]
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return Isolation("refused", (
            f"full isolation is not possible: the worker runs as {me} (uid {os.geteuid()}), "
            f"not as root, so it cannot run flow code as another user ({name}). Run the "
            "worker as root (it runs flows as AUTOMATION_FLOW_USER), or set "
            "AUTOMATION_FLOW_ISOLATION=none where one trusted user writes every flow"
        ))
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        return Isolation("refused", (
            f"full isolation is not possible: AUTOMATION_FLOW_USER={name!r} is no user on this "
            "machine; create it (useradd --system) or name another"
        ))
    if user.pw_uid == 0:
        return Isolation("refused", f"full isolation is not possible: AUTOMATION_FLOW_USER={name!r} is root")
    for path in _python_dirs():
        if not _searchable_by(path, user.pw_uid, user.pw_gid, stat.S_IROTH | stat.S_IXOTH):
            return Isolation("refused", (
                f"full isolation is not possible: the flow user {name} cannot read {path}, "
                "which flow code needs (Python and flow_api); make the directories on the way "
                "searchable by others (chmod o+x), or install Python where all may read it"
            ))
    var_dir = Path(settings.VAR_DIR)
    if var_dir.exists() and _searchable_by(var_dir, user.pw_uid, user.pw_gid, stat.S_IXOTH):
        return Isolation("refused", (
            f"full isolation is not possible: the flow user {name} could read the engine's "
            f"var directory {var_dir} (its secrets); chmod 700 {var_dir}"
        ))
    return Isolation("full", (
        f"full: flow code runs as {name} (uid {user.pw_uid}), without the engine's "
        f"environment, files or database; {cleanup}; {limits}"
    ), user.pw_uid, user.pw_gid)


_isolation: Isolation | None = None


def isolation() -> Isolation:
    global _isolation
    if _isolation is None:
        _isolation = _check_isolation()
    return _isolation
