"""The SQL queries and Redis commands of one execution's life stay few.

Not timed: counted. The runner runs here, in the test process (`engine.claim` and
`runner.execute` are the code a worker's task runs), so every query is seen. A change that
adds a query or a Redis command to the hot path fails here; if the addition is deliberate,
raise the bound in the same change and say why.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis.connection
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executions import engine
from executions.engine import notify, queues, runner
from executions.models import Execution, Flow

pytestmark = [pytest.mark.django_db(transaction=True)]

# A worker group no worker serves: the Celery message that start_execution sends waits in
# Redis untouched (and is removed afterwards), so no worker can claim the row before we do.
GROUP = "querycount"

# The bounds: today's counts. Lower them when the engine gets leaner.
START_QUERIES = 2      # read the flow (id, revision: not its script), insert the row
CLAIM_QUERIES = 1      # the conditional PENDING -> RUNNING update, RETURNING the claimed row
RUN_QUERIES = 1        # record the end (the compiled script comes from the cache)
START_REDIS = 1        # the Celery message
RUN_REDIS = 1          # "ended" for waiters
# One synchronous child adds: read its flow, insert it, record its end, and for the first
# child of a tree, count a block of 20 on its root (AUTOMATION_MAX_DESCENDANTS): the 2nd to
# 20th child of that tree add no count (test below).
INLINE_CHILD_QUERIES = 4
LOOPED_CHILD_QUERIES = 3
INLINE_CHILD_REDIS = 1


class RedisCommands:
    """Counts the Redis commands this thread sends (the guard's watcher thread is not ours)."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()
        self.thread = threading.get_ident()

    def note(self, args: tuple[Any, ...]) -> None:
        if threading.get_ident() == self.thread and args:
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            # redis-py's own health check (a PING after an idle spell) is not the engine's.
            if name.upper() != "PING":
                self.names[name.upper()] += 1

    @property
    def count(self) -> int:
        return sum(self.names.values())


@pytest.fixture
def redis_commands(monkeypatch: pytest.MonkeyPatch) -> RedisCommands:
    """Wrap redis-py's sending (the library's, not our code) to count commands: single
    commands go through `send_command`, pipelines through `pack_commands`."""
    seen = RedisCommands()
    cls = redis.connection.AbstractConnection
    send_one, pack_many = cls.send_command, cls.pack_commands

    def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.note(args)
        return send_one(self, *args, **kwargs)

    def pack_commands(self: Any, commands: Any) -> Any:
        for command in commands:
            seen.note(tuple(command))
        return pack_many(self, commands)

    monkeypatch.setattr(cls, "send_command", send_command)
    monkeypatch.setattr(cls, "pack_commands", pack_commands)
    return seen


@pytest.fixture
def served_here() -> Iterator[None]:
    """This process serves the group, as a worker would: sync children run inline."""
    queues.set_served_queues({queues.celery_queue(GROUP, Execution.Mode.PRODUCTIVE)})
    try:
        yield
    finally:
        queues.set_served_queues(frozenset())
        with contextlib.suppress(Exception):
            notify.client().delete(queues.celery_queue(GROUP, Execution.Mode.PRODUCTIVE))


@pytest.fixture
def flows(db: None) -> None:
    Flow.objects.create(name="qc-noop", script="def handler(system, this):\n    return None\n",
                        queue=GROUP)
    Flow.objects.create(
        name="qc-parent", queue=GROUP,
        script="def handler(system, this):\n    this.flow('qc-noop')\n",
    )
    Flow.objects.create(
        name="qc-loop", queue=GROUP,
        script="def handler(system, this):\n    for _ in range(10):\n        this.flow('qc-noop')\n",
    )
    Flow.objects.create(name="qc-lonely", queue=GROUP,
                        script="def handler(system, this):\n    return None\n")


class Phases:
    """Queries and Redis commands of each phase of one execution's life."""

    def __init__(self, redis_seen: RedisCommands) -> None:
        self.redis_seen = redis_seen
        self.queries: dict[str, list[str]] = {}
        self.redis: dict[str, Counter[str]] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        before = Counter(self.redis_seen.names)
        with CaptureQueriesContext(connection) as captured:
            yield
        self.queries[name] = [q["sql"] for q in captured.captured_queries]
        self.redis[name] = self.redis_seen.names - before

    def n(self, name: str) -> int:
        return len(self.queries[name])

    def r(self, name: str) -> int:
        return sum(self.redis[name].values())

    def describe(self) -> str:
        lines = []
        for name, sqls in self.queries.items():
            lines.append(f"{name}: {len(sqls)} queries, redis {dict(self.redis[name])}")
            lines.extend(f"    {sql[:160]}" for sql in sqls)
        return "\n".join(lines)


def life(flow: str, phases: Phases, prefix: str = "") -> Execution:
    """Start, claim and run one execution in this process, phase by phase."""
    with phases.phase(f"{prefix}start"):
        started = engine.start_execution(flow=flow)
    with phases.phase(f"{prefix}claim"):
        claimed = engine.claim(started.pk)
    assert claimed is not None
    with phases.phase(f"{prefix}run"):
        status = runner.execute(claimed)
    assert status == "ENDED_SUCCESS", claimed.message
    return claimed


def warm_up(flow: str, redis_seen: RedisCommands) -> None:
    """A first life of the flow fills the compile cache and opens connections, as the first
    execution on a fresh worker does; the bounds are about every execution after that."""
    life(flow, Phases(redis_seen), "warm ")


def test_one_trivial_execution_costs_four_queries_and_two_redis_commands(
    flows: None, served_here: None, redis_commands: RedisCommands
) -> None:
    warm_up("qc-lonely", redis_commands)
    phases = Phases(redis_commands)
    ended = life("qc-lonely", phases)

    assert Execution.objects.get(pk=ended.pk).status == "ENDED_SUCCESS"
    report = phases.describe()
    assert phases.n("start") <= START_QUERIES, report
    assert phases.n("claim") <= CLAIM_QUERIES, report
    assert phases.n("run") <= RUN_QUERIES, report
    assert phases.r("start") <= START_REDIS, report
    assert phases.r("run") <= RUN_REDIS, report
    assert phases.r("claim") == 0, report


def test_one_synchronous_child_runs_inline_for_four_queries_and_one_redis_command(
    flows: None, served_here: None, redis_commands: RedisCommands
) -> None:
    warm_up("qc-lonely", redis_commands)
    warm_up("qc-parent", redis_commands)
    alone = Phases(redis_commands)
    life("qc-lonely", alone)
    with_child = Phases(redis_commands)
    parent = life("qc-parent", with_child)

    child = Execution.objects.get(parent=parent)
    assert child.status == "ENDED_SUCCESS"
    assert child.started_at is not None and child.ended_at is not None
    report = f"alone:\n{alone.describe()}\nwith a child:\n{with_child.describe()}"
    # The parent's start and claim do not depend on its script; the child's whole life
    # happens inside the parent's run.
    added = with_child.n("run") - alone.n("run")
    added_redis = with_child.r("run") - alone.r("run")
    assert added <= INLINE_CHILD_QUERIES, report
    assert added_redis <= INLINE_CHILD_REDIS, report
    # Inline means no Celery message for the child: nothing was pushed to a queue.
    assert with_child.redis["run"]["LPUSH"] == 0, report


def test_a_loop_of_synchronous_children_costs_three_queries_each(
    flows: None, served_here: None, redis_commands: RedisCommands
) -> None:
    warm_up("qc-lonely", redis_commands)
    warm_up("qc-loop", redis_commands)
    alone = Phases(redis_commands)
    life("qc-lonely", alone)
    looped = Phases(redis_commands)
    parent = life("qc-loop", looped)

    assert Execution.objects.filter(parent=parent, status="ENDED_SUCCESS").count() == 10
    report = f"alone:\n{alone.describe()}\nwith ten children:\n{looped.describe()}"
    added = looped.n("run") - alone.n("run")
    assert added <= 10 * LOOPED_CHILD_QUERIES + 1, report  # + 1: the tree's block of places


WAIT_ENDED_QUERIES = 1  # the first read finds it ended: the row is returned as read


def test_waiting_for_an_ended_execution_reads_its_row_once(
    flows: None, served_here: None, redis_commands: RedisCommands
) -> None:
    warm_up("qc-lonely", redis_commands)
    ended = life("qc-lonely", Phases(redis_commands))
    phases = Phases(redis_commands)
    with phases.phase("wait"):
        found = engine.wait_for([ended.pk], timeout=5)

    report = phases.describe()
    assert [e.status for e in found] == ["ENDED_SUCCESS"], report
    assert phases.n("wait") <= WAIT_ENDED_QUERIES, report


def test_a_child_that_ended_on_a_worker_looks_for_its_parked_parent_by_the_parents_id(
    flows: None, served_here: None, redis_commands: RedisCommands
) -> None:
    """Not joined to the child: PostgreSQL planned that join, on a table growing faster than
    its statistics (every bench, every busy day), as a scan of all executions not waiting
    for a form, 0.8 ms of its CPU for every child a worker ran."""
    warm_up("qc-noop", redis_commands)
    parent = engine.claim(engine.start_execution(flow="qc-parent").pk)
    assert parent is not None
    child = engine.start_execution(flow="qc-noop", parent=parent)
    phases = Phases(redis_commands)
    with phases.phase("run"):
        claimed = engine.claim(child.pk)
        assert claimed is not None
        assert runner.execute(claimed) == "ENDED_SUCCESS"

    report = phases.describe()
    looks = [sql for sql in phases.queries["run"] if sql.startswith("SELECT") and "parked" in sql]
    assert len(looks) == 1, report
    assert looks[0].upper().count("SELECT") == 1, report  # no subquery over the children
    numbers = {int(n) for n in re.findall(r"\b\d+\b", looks[0])}
    assert parent.pk in numbers and child.pk not in numbers, report
    assert phases.n("run") <= CLAIM_QUERIES + RUN_QUERIES + 1, report
