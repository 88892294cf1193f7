"""GIT: read a repository with the `git` command: its refs and latest commit, its files, and
the content of files. Each call clones (shallow) into a temporary directory that is removed
afterwards, so nothing is kept between calls and no working copy is shared.

Commands (`command`): `metadata` (the remote's refs and the commit of `ref`), `clone` (the
commit and the list of files), `pull` (Cloudomation's name for bringing a copy up to date:
with nothing kept between calls, that is a clone of the newest commit, so it is the same),
`get` (as clone, plus the text of the files in `files_path`).
Only git://, http:// and https:// repositories: a flow must not read the worker's own
files through a local path or file://, nor run programs through git's `ext::` transport.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .base import Connector as BaseConnector
from .base import ConnectorError, InputError, mask_url

COMMANDS = ("metadata", "clone", "pull", "get")
ALLOWED_PROTOCOLS = ("git", "http", "https")
MAX_FILE_BYTES = 1_000_000  # one file's content in an output; larger ones are named, not read
MAX_TOTAL_BYTES = 10_000_000  # all contents of one call


class Connector(BaseConnector):
    """Output: `metadata` -> `refs` {name: sha}, `commit`; `clone` and `pull` -> `commit`,
    `files`; `get` -> `commit`, `files`, `content` {path: text}, `skipped` (binary or too
    large)."""

    type_name = "GIT"
    inputs = {
        "command": "metadata, clone, pull (the same as clone) or get (default get)",
        "repository_url": "git://, http:// or https:// URL of the repository",
        "ref": "branch or tag (default: the repository's default branch)",
        "files_path": "for get: a path or glob (or a list of them) of the files to read; "
                      "default all",
        "username": "user name for an http(s) repository",
        "password": "password or token for an http(s) repository",
        "timeout": "seconds the whole call may take (default 120)",
    }
    required = ("repository_url",)
    default_timeout = 120.0

    def call(self) -> dict[str, Any]:
        command = str(self.get("command", "get")).lower()
        if command not in COMMANDS:
            raise InputError(f"command must be one of {', '.join(COMMANDS)}, not {command!r}")
        url = self._url()
        shown = mask_url(url)
        deadline = time.monotonic() + self.timeout()
        with tempfile.TemporaryDirectory(prefix="git-connector-") as tmp:
            git = _Git(Path(tmp), deadline, shown, self)
            git.env.update(self._credentials())
            if command == "metadata":
                refs = git.refs(url)
                output: dict[str, Any] = {
                    "refs": refs, "commit": git.commit_of(url, self.get("ref"), refs),
                }
            else:
                work = git.clone(url, self.get("ref"))
                files = git.files(work)
                output = {"commit": git.head(work), "files": files}
                if command == "get":
                    output.update(_contents(work, files, self._patterns()))
        self.log(f"GIT {command} {shown}: commit {output['commit'].get('sha', '?')[:12]}")
        return output

    def _url(self) -> str:
        raw = self.get("repository_url")
        if not isinstance(raw, str) or not raw.strip():
            raise InputError("repository_url must be text")
        parts = urlsplit(raw.strip())
        if parts.scheme.lower() not in ALLOWED_PROTOCOLS or not parts.hostname:
            raise InputError(
                f"repository_url {mask_url(raw)!r}: only git://, http:// and https:// "
                "repositories are allowed"
            )
        if self.given("username") and parts.scheme.lower() == "git":
            raise InputError("username and password need an http(s) repository_url")
        return raw.strip()

    def _credentials(self) -> dict[str, str]:
        """Basic auth for http(s) as git configuration in the environment (git 2.31+): not
        in the command line, which every user of the worker's machine can read in `ps`."""
        if not self.given("username"):
            return {}
        pair = f"{self.get('username')}:{self.get('password', '')}".encode()
        encoded = base64.b64encode(pair).decode()
        self.scrubber.add_form(encoded)
        return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {encoded}"}

    def _patterns(self) -> list[str]:
        raw = self.get("files_path", [])
        patterns = [raw] if isinstance(raw, str) else raw
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise InputError("files_path must be a path or glob, or a list of them")
        return [p.strip("/") for p in patterns]


class _Git:
    """Runs git in a temporary home with no system or user configuration."""

    def __init__(self, home: Path, deadline: float, shown: str, connector: Connector) -> None:
        self.home, self.deadline, self.shown, self.connector = home, deadline, shown, connector
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
            "GIT_ALLOW_PROTOCOL": ":".join(ALLOWED_PROTOCOLS), "LC_ALL": "C",
        }

    def run(self, *args: str, cwd: Path | None = None) -> str:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ConnectorError(f"GIT {self.shown}: timed out")
        try:
            process = subprocess.Popen(
                ["git", *args], cwd=cwd or self.home, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except FileNotFoundError:
            raise ConnectorError("GIT: the git program is not installed on the worker") from None
        try:
            with self.connector.interruptible():
                stdout, stderr = process.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            raise ConnectorError(
                f"GIT {self.shown}: timed out after {self.connector.timeout():g} s"
            ) from None
        finally:
            # git runs helpers (remote-http, fetch-pack) in its process group: end them all
            # when it did not end by itself (a timeout or a cancel).
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.returncode != 0:
            error = stderr.decode("utf-8", "replace").strip().splitlines()
            raise ConnectorError(f"GIT {self.shown}: git {args[0]} failed: "
                                 + (" ".join(error[-3:]) or f"exit code {process.returncode}"))
        return stdout.decode("utf-8", "replace")

    def refs(self, url: str) -> dict[str, str]:
        refs = {}
        for line in self.run("ls-remote", "--", url).splitlines():
            sha, _, name = line.partition("\t")
            if name:
                refs[name] = sha
        return refs

    def commit_of(self, url: str, ref: Any, refs: dict[str, str]) -> dict[str, Any]:
        """The commit of `ref`, read with a clone of that one commit (ls-remote has no
        author or message)."""
        if ref is not None and not any(n in refs for n in _ref_names(str(ref))):
            raise ConnectorError(f"GIT {self.shown}: no branch or tag {str(ref)!r}")
        return self.head(self.clone(url, ref, no_checkout=True))

    def clone(self, url: str, ref: Any, no_checkout: bool = False) -> Path:
        work = self.home / "work"
        args = ["clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags"]
        if ref is not None:
            args += ["--branch", str(ref)]
        if no_checkout:
            args.append("--no-checkout")
        self.run(*args, "--", url, str(work))
        return work

    def head(self, work: Path) -> dict[str, Any]:
        fields = self.run("log", "-1", "--format=%H%x00%an%x00%ae%x00%aI%x00%B", cwd=work)
        sha, author, email, date, message = (fields.split("\0") + [""] * 5)[:5]
        return {"sha": sha, "author": author, "email": email, "date": date,
                "message": message.strip()}

    def files(self, work: Path) -> list[str]:
        return sorted(p for p in self.run("ls-files", "-z", cwd=work).split("\0") if p)


def _ref_names(ref: str) -> tuple[str, ...]:
    return (ref, f"refs/heads/{ref}", f"refs/tags/{ref}")


def _contents(work: Path, files: list[str], patterns: list[str]) -> dict[str, Any]:
    content: dict[str, str] = {}
    skipped: dict[str, str] = {}
    total = 0
    for path in files:
        if patterns and not any(path == p or fnmatch.fnmatchcase(path, p) for p in patterns):
            continue
        target = work / path
        if target.is_symlink() or not target.is_file():  # a link may point out of the clone
            skipped[path] = "not a regular file"
            continue
        size = target.stat().st_size
        if size > MAX_FILE_BYTES or total + size > MAX_TOTAL_BYTES:
            skipped[path] = f"too large ({size} bytes)"
            continue
        data = target.read_bytes()
        try:
            content[path] = data.decode("utf-8")
        except UnicodeDecodeError:
            skipped[path] = "binary"
            continue
        total += size
    if patterns and not content and not skipped:
        raise ConnectorError(f"no file matches files_path {', '.join(patterns)}")
    return {"content": content, "skipped": skipped}
