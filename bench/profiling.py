"""py-spy attached to the engine worker's pool processes while a scenario runs.

The worker is sampled from outside (`--nonblocking`: the worker is never paused), so the
profile shows the same code a production worker runs. The collapsed stacks go to
var/bench/profile-<scenario>.txt; `summarize` turns them into the tables of bench/profile.md.
"""

from __future__ import annotations

import collections
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from .harness import LOG_DIR, Worker

# Frames on every stack of a worker (its start-up and main loops): they say nothing.
_PLUMBING = (
    "click/", "billiard/", "<frozen", "celery/bin/", "celery/bootsteps", "celery/__main__",
    "celery/worker/worker.py", "celery/concurrency/", "threading.py", "celery/apps/",
)
_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def py_spy() -> str:
    found = Path(sys.executable).parent / "py-spy"
    if found.exists():
        return str(found)
    other = shutil.which("py-spy")
    if other is None:
        sys.exit("[bench] --profile needs py-spy: pip install -e '.[dev]'")
    return other


@contextlib.contextmanager
def sampling(worker: Worker, name: str, rate: int = 200) -> Iterator[Path]:
    """Sample the worker (and its pool processes) until the block ends."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    out = LOG_DIR / f"profile-{name}.txt"
    process = subprocess.Popen(
        [
            py_spy(), "record", "--pid", str(worker.pid), "--subprocesses", "--nonblocking",
            "--rate", str(rate), "--format", "raw", "--output", str(out),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        yield out
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1].lstrip("/")
    return file.rsplit("/main/", 1)[-1]


def summarize(path: Path, top: int = 25) -> str:
    """Self and inclusive sample counts by function, as Markdown."""
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for text in path.read_text(errors="replace").splitlines():
        stack, _, count_text = text.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for raw in stack.split(";"):
            m = _FRAME.match(raw)
            if m is None:
                continue  # the process / thread header of the stack
            frames.append(f"{m['func']} ({_short(m['file'])})")
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            if not frame.split(" (", 1)[1].startswith(_PLUMBING):
                inclusive[frame] += count
    if not total:
        return "(no samples)\n"

    def block(title: str, counter: collections.Counter[str]) -> str:
        rows = [f"| {title} | samples | share |", "|---|---:|---:|"]
        for frame, count in counter.most_common(top):
            rows.append(f"| `{frame}` | {count} | {count / total:.1%} |")
        return "\n".join(rows)

    return (
        f"{total} samples of busy worker threads.\n\n"
        + block("inclusive (the function and what it calls)", inclusive)
        + "\n\n"
        + block("self (the function's own code)", self_time)
        + "\n"
    )
