"""The scenarios: each runs once against the engine and once against raw Celery and returns
its figures. The runner repeats them, alternating engine and raw, so that a noisy neighbour
hurts both sides alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import harness

TIMEOUT = 600.0  # no single repetition may take longer than this


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool = False
    goal: float | None = None  # the goal for the ratio engine / raw
    goal_text: str = ""


@dataclass
class Scenario:
    name: str
    description: str
    size: int
    quick_size: int
    metrics: list[Metric]
    engine: Callable[[int, dict[str, Any]], dict[str, float]]
    raw: Callable[[int, dict[str, Any]], dict[str, float]]
    notes: list[str] = field(default_factory=list)
    skipped: str = ""  # why the scenario did not run


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": statistics.median(ordered), "p95": q[94], "p99": q[98]}


# --- engine side ---------------------------------------------------------------------------
def _start_and_wait(flow: str, inputs: dict[str, Any] | None = None) -> Any:
    from executions import engine

    execution = engine.start_execution(flow=flow, input_value=inputs or {})
    ended = engine.wait_for([execution.pk], timeout=TIMEOUT)[0]
    if ended.status != "ENDED_SUCCESS":
        raise RuntimeError(f"bench execution {ended.pk} ended {ended.status}: {ended.message}")
    return ended


def engine_seq(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    started = time.perf_counter()
    _start_and_wait(harness.SEQ, {"count": count})
    total = time.perf_counter() - started
    return {"total_s": total, "per_child_ms": total / count * 1000}


def engine_fanout(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    started = time.perf_counter()
    _start_and_wait(harness.FANOUT, {"count": count})
    return {"total_s": time.perf_counter() - started}


def engine_throughput(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    from executions import engine

    t0 = time.time()
    ids = [engine.start_execution(flow=harness.NOOP).pk for _ in range(count)]
    sent = time.time()
    return {"per_s": _until_ended(ids, t0, "throughput"), "send_s": sent - t0}


def _until_ended(ids: list[int], t0: float, what: str) -> float:
    """Wait until every one of `ids` ended successfully; executions/s from t0 to the last end."""
    from django.db.models import Max

    from executions.models import Execution

    count = len(ids)
    rows = Execution.objects.filter(pk__in=ids)
    deadline = time.monotonic() + TIMEOUT
    while rows.filter(status__in=Execution.ENDED).count() < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not all {count} executions ended in {TIMEOUT} s")
        time.sleep(0.1)
    if rows.exclude(status=Execution.Status.ENDED_SUCCESS).exists():
        raise RuntimeError(f"{what}: some bench executions did not succeed")
    last_end = rows.aggregate(last=Max("ended_at"))["last"].timestamp()
    return count / (last_end - t0)


def engine_api_throughput(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    """`count` executions started through the API by several keep-alive clients at once."""
    from concurrent.futures import ThreadPoolExecutor

    clients = ctx["api_clients"]
    per_client = [count // len(clients) + (1 if i < count % len(clients) else 0) for i in range(len(clients))]

    def run(job: tuple[Any, int]) -> list[int]:
        client, n = job
        return [client.start(harness.NOOP) for _ in range(n)]

    t0 = time.time()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        ids = [pk for chunk in pool.map(run, zip(clients, per_client, strict=True)) for pk in chunk]
    sent = time.time()
    return {"per_s": _until_ended(ids, t0, "api_throughput"), "send_s": sent - t0}


def engine_latency(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    """One execution at a time, started and awaited: through the HTTP API when it is there
    (ctx["http"]), else through the same services the API view calls."""
    http = ctx.get("http")
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        if http is not None:
            http.start_and_wait(harness.NOOP)
        else:
            _start_and_wait(harness.NOOP)
        samples.append((time.perf_counter() - started) * 1000)
    return _percentiles(samples)


def webhook_latency(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    hook = ctx["webhook"]
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        hook.call()
        samples.append((time.perf_counter() - started) * 1000)
    return _percentiles(samples)


# --- raw Celery side -----------------------------------------------------------------------
def raw_seq(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    from . import raw_tasks

    started = time.perf_counter()
    raw_tasks.seq.apply_async((count,)).get(timeout=TIMEOUT)
    total = time.perf_counter() - started
    return {"total_s": total, "per_child_ms": total / count * 1000}


def raw_fanout(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    from . import raw_tasks

    started = time.perf_counter()
    raw_tasks.fanout.apply_async((count,)).get(timeout=TIMEOUT)
    return {"total_s": time.perf_counter() - started}


def raw_throughput(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    from celery.result import ResultSet

    from . import raw_tasks

    t0 = time.time()
    results = [raw_tasks.noop.apply_async() for _ in range(count)]
    sent = time.time()
    ended_at = ResultSet(results).get(timeout=TIMEOUT)  # each noop returns when it ran
    for result in results:
        result.forget()
    return {"per_s": count / (max(ended_at) - t0), "send_s": sent - t0}


def raw_latency(count: int, ctx: dict[str, Any]) -> dict[str, float]:
    from . import raw_tasks

    samples = []
    for _ in range(count):
        started = time.perf_counter()
        result = raw_tasks.noop.apply_async()
        result.get(timeout=60)
        samples.append((time.perf_counter() - started) * 1000)
        result.forget()
    return _percentiles(samples)


_LATENCY_METRICS = [
    Metric("p50", "p50", "ms", goal=3.0, goal_text="<= 3x"),
    Metric("p95", "p95", "ms"),
    Metric("p99", "p99", "ms", goal=5.0, goal_text="<= 5x"),
]


def all_scenarios() -> list[Scenario]:
    return [
        Scenario(
            "seq40",
            "a flow awaiting 40 trivial child flows one after another "
            "(raw: a task awaiting 40 nested `apply_async().get()`)",
            40, 40,
            [
                Metric("total_s", "total", "s", goal=1.0, goal_text="<= 1x"),
                Metric("per_child_ms", "per child", "ms"),
            ],
            engine_seq, raw_seq,
        ),
        Scenario(
            "fanout1000",
            "a flow starting 1,000 children with run_async and waiting for all "
            "(raw: a task sending a group of 1,000 and awaiting it)",
            1000, 200,
            [Metric("total_s", "total", "s", goal=1.5, goal_text="<= 1.5x")],
            engine_fanout, raw_fanout,
        ),
        Scenario(
            "throughput",
            "5,000 trivial top-level executions started from Python, until the last ended "
            "(raw: 5,000 no-op tasks until the last ran)",
            5000, 1000,
            [
                Metric("per_s", "executions/s", "1/s", higher_is_better=True, goal=0.5,
                       goal_text=">= 0.5x"),
                Metric("send_s", "time to send all", "s"),
            ],
            engine_throughput, raw_throughput,
        ),
        Scenario(
            "api_throughput",
            "2,000 trivial executions started through POST /api/executions/ by 8 keep-alive "
            "clients at once, until the last ended (raw: 2,000 no-op tasks until the last ran)",
            2000, 400,
            [
                Metric("per_s", "executions/s", "1/s", higher_is_better=True, goal=0.4,
                       goal_text=">= 0.4x"),
                Metric("send_s", "time to send all", "s"),
            ],
            engine_api_throughput, raw_throughput,
        ),
        Scenario(
            "latency",
            "500 trivial executions one at a time, started and awaited "
            "(raw: `apply_async().get()`)",
            500, 100,
            _LATENCY_METRICS,
            engine_latency, raw_latency,
        ),
        Scenario(
            "webhook",
            "500 synchronous webhook calls of a trivial flow, one at a time "
            "(raw: `apply_async().get()`)",
            500, 100,
            _LATENCY_METRICS,
            webhook_latency, raw_latency,
        ),
    ]
