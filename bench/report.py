"""The table: median, min and max of each figure for the engine and raw Celery, the ratio
engine / raw of the medians and the goal; plus the machine, versions and flags."""

from __future__ import annotations

import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .scenarios import Metric, Scenario


@dataclass
class Outcome:
    scenario: Scenario
    engine: list[dict[str, float]] = field(default_factory=list)
    raw: list[dict[str, float]] = field(default_factory=list)
    size: int = 0


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:,.0f}/s"


def _row(metric: Metric, outcome: Outcome) -> list[str]:
    e = [r[metric.key] for r in outcome.engine]
    r = [r[metric.key] for r in outcome.raw]
    em, rm = statistics.median(e), statistics.median(r)
    ratio = em / rm if rm else float("nan")
    verdict = ""
    if metric.goal is not None:
        met = ratio >= metric.goal if metric.higher_is_better else ratio <= metric.goal
        verdict = f"{metric.goal_text} {'met' if met else 'MISSED'}"
    return [
        f"{outcome.scenario.name} ({outcome.size:,})", metric.label,
        _fmt(em, metric.unit), _fmt(min(e), metric.unit), _fmt(max(e), metric.unit),
        _fmt(rm, metric.unit), _fmt(min(r), metric.unit), _fmt(max(r), metric.unit),
        f"{ratio:.2f}", verdict,
    ]


HEADER = [
    "scenario", "figure", "engine median", "engine min", "engine max",
    "raw median", "raw min", "raw max", "engine/raw", "goal",
]


def table(outcomes: list[Outcome]) -> str:
    """A Markdown table (also readable as plain text in a terminal)."""
    rows = [HEADER]
    for outcome in outcomes:
        if outcome.scenario.skipped or not outcome.engine:
            continue
        rows.extend(_row(m, outcome) for m in outcome.scenario.metrics)
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    out = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(row) for row in rows[1:])
    return "\n".join(out)


def machine() -> dict[str, str]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for text in f:
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    load = ""
    try:
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
    except OSError:
        pass
    return {
        "nproc": nproc, "memory": memory, "cpu": cpu or platform.processor(),
        "os": platform.platform(), "load average at the end": load,
    }


def versions() -> dict[str, str]:
    from django.conf import settings
    from django.db import connection

    found = {"python": platform.python_version()}
    for name in ("celery", "kombu", "redis", "django", "psycopg"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "-"
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SHOW server_version")
            found["database"] = f"PostgreSQL {cursor.fetchone()[0]}"
        elif vendor == "sqlite":
            cursor.execute("select sqlite_version()")
            found["database"] = f"SQLite {cursor.fetchone()[0]}"
        else:
            found["database"] = vendor
    try:
        import redis

        info: Any = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5).info("server")
        found["redis server"] = str(info.get("redis_version", "-"))
    except Exception:
        found["redis server"] = "-"
    return found
