"""Load: a burst of executions started through the API by a bounded client on loopback.

All end ENDED_SUCCESS, none is lost or run twice, the API's p99 stays under a stated bound,
and the worker's memory stays bounded. N is AUTOMATION_LOAD_N (default 2,000; the issue's
10,000 with AUTOMATION_LOAD_N=10000, see docs/README-reliability.md).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from executions.api.auth import issue_token
from executions.models import Execution, ExecutionLog

from ..workers import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
]

N = int(os.environ.get("AUTOMATION_LOAD_N", "2000"))
CLIENT_THREADS = 8
P99_BOUND_SECONDS = float(os.environ.get("AUTOMATION_LOAD_P99_SECONDS", "3.0"))
RSS_GROWTH_BOUND_KB = 150_000  # per worker process, over the whole burst

# Each run counts itself in its own output and log: a second run of one execution shows.
COUNTER = """
def handler(system, this, inputs):
    this.log('ran', n=inputs['n'])
    runs = (this.get('output_value') or {}).get('runs', 0) + 1
    return {'n': inputs['n'], 'runs': runs}
"""


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _worker_rss(pid: int) -> dict[int, int]:
    """RSS in kB of the worker's main process and its pool processes."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(p) for p in f.read().split()]
    except OSError:
        children = []
    return {p: _rss_kb(p) for p in [pid, *children]}


@pytest.mark.timeout(1800)
def test_a_burst_of_executions_through_the_api_all_succeed_once(
    live_server, make_flow, worker, django_user_model
) -> None:
    make_flow("counter", COUNTER)
    user = django_user_model.objects.create_superuser("loader", password="p" * 12)
    token = issue_token(user)["token"]
    url = f"{live_server.url}/api/executions/"
    local = threading.local()

    def start(n: int) -> tuple[int, float, int | None]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
        began = time.perf_counter()
        answer = session.post(url, json={"flow": "counter", "input_value": {"n": n}}, timeout=30)
        took = time.perf_counter() - began
        return answer.status_code, took, answer.json().get("id") if answer.ok else None

    rss_before = _worker_rss(worker.pid)
    began = time.monotonic()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        answers = list(pool.map(start, range(N)))
    burst_seconds = time.monotonic() - began
    statuses = [code for code, _, _ in answers]
    latencies = sorted(took for _, took, _ in answers)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"\nload: POSTed {N} executions with {CLIENT_THREADS} client threads in "
        f"{burst_seconds:.1f} s ({N / burst_seconds:.0f}/s); API p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms (bound {P99_BOUND_SECONDS * 1000:.0f} ms), max "
        f"{latencies[-1] * 1000:.0f} ms; answers {sorted(set(statuses))}"
    )
    assert statuses == [201] * N

    ended = Execution.Status.ENDED_SUCCESS, Execution.Status.ENDED_ERROR, Execution.Status.ENDED_CANCELLED
    rows = Execution.objects.filter(flow__name="counter")

    def all_ended() -> bool:
        return rows.filter(status__in=ended).count() >= N

    wait_until(all_ended, timeout=120 + N * 0.2, interval=1.0)
    run_seconds = time.monotonic() - began
    rss_after = _worker_rss(worker.pid)

    total = rows.count()
    succeeded = rows.filter(status=Execution.Status.ENDED_SUCCESS).count()
    inputs = set(rows.values_list("input_value__n", flat=True))
    runs_seen = list(rows.values_list("output_value__runs", flat=True))
    logs = ExecutionLog.objects.filter(execution__flow__name="counter", text="ran").count()
    started_ids = {pk for _, _, pk in answers}
    lost = N - len(started_ids & set(rows.values_list("pk", flat=True)))
    duplicated = (total - len(inputs)) + sum(1 for r in runs_seen if r != 1) + max(0, logs - N)
    print(
        f"load: started {N}, rows {total}, completed {succeeded} in {run_seconds:.1f} s "
        f"({succeeded / run_seconds:.0f}/s), lost = {lost}, duplicated = {duplicated}, "
        f"run logs {logs}"
    )
    for pid, kb in rss_after.items():
        print(f"load: worker process {pid} RSS {rss_before.get(pid, 0) // 1024} -> {kb // 1024} MB")
    assert total == N and len(inputs) == N
    assert succeeded == N
    assert lost == 0
    assert duplicated == 0 and set(runs_seen) == {1} and logs == N
    assert p99 < P99_BOUND_SECONDS
    for pid, kb in rss_after.items():
        if pid in rss_before:  # a pool process replaced meanwhile starts small again
            assert kb - rss_before[pid] < RSS_GROWTH_BOUND_KB, f"process {pid} grew {kb - rss_before[pid]} kB"
        assert kb < 512_000  # CELERY_WORKER_MAX_MEMORY_PER_CHILD replaces a child above this
