"""The embedded default's files: the var directory and the secrets generated into it.

automation/settings.py and scripts/dev.py (which starts the embedded Redis before any
process reads the settings) both use these, so that they agree on the Redis password. Plain
standard library, no Django, no environment: the callers pass the var directory.

The var directory holds the generated secrets (SECRET_KEY, FIELD_ENCRYPTION_KEY, the
embedded Redis's password), so it is private to the engine's user (0700) and each secret
file is 0600: flow code running as another user (executions/engine/isolation.py) must read
none of them, nor reach the embedded Redis, which holds the broker's messages.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

HOST = "127.0.0.1"
REDIS_PASSWORD_FILE = "redis_password"


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) with mode 0700, or tighten it to 0700 if it is looser.

    A directory of another owner is left as it is (chmod would fail); isolation.py then
    refuses full isolation with the reason rather than the settings refusing to load."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        with contextlib.suppress(PermissionError):
            path.chmod(0o700)
    return path


def generated_secret(var_dir: Path, filename: str, generate: Callable[[], str] | None = None) -> str:
    """A secret generated once for the embedded default and kept in var_dir/filename (0600).

    Processes starting at once (web, worker, beat) agree on one value: the new file is
    written whole under a temporary name and linked into place, and a process that loses
    the race reads the winner's file. `generate` makes the value (default: 50 random bytes,
    URL-safe)."""
    private_dir(var_dir)  # also tightens one made looser by an older version or by hand
    path = var_dir / filename
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if value:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            with contextlib.suppress(PermissionError):
                path.chmod(0o600)
        return value
    value = generate() if generate else secrets.token_urlsafe(50)
    tmp = var_dir / f".{filename}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(value)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            existing = path.read_text().strip()
            if existing:
                return existing
            os.replace(tmp, path)  # an empty file left by someone: replaced
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return value


def redis_password(var_dir: Path) -> str:
    """The embedded Redis's password (var_dir/redis_password), generated on first use."""
    return generated_secret(var_dir, REDIS_PASSWORD_FILE, lambda: secrets.token_hex(32))


def embedded_redis_url(var_dir: Path, port: int, db: int = 0) -> str:
    """The URL of the embedded Redis: loopback only, with its generated password."""
    return f"redis://:{redis_password(var_dir)}@{HOST}:{port}/{db}"


def masked_url(url: str) -> str:
    """`url` fit to print or show: its password (and user) replaced by ***."""
    parsed = urlparse(url)
    if parsed.password is None and parsed.username is None:
        return url
    host = parsed.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parsed.port}" if parsed.port else ""
    return parsed._replace(netloc=f"***@{host}{port}").geturl()
