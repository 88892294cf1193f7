"""Execution priority: a busy worker takes high before normal before low, whatever came first."""

from __future__ import annotations

import pytest
from django.db import transaction

from executions import engine
from executions.models import Execution

from ..workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]


def test_a_busy_worker_starts_queued_high_priority_executions_before_earlier_normal_and_low_ones(
    make_flow, tmp_path
):
    make_flow("blocker", "import time\ndef handler(system, this):\n    time.sleep(1.5)\n", queue="prio")
    make_flow("job", "def handler(system, this):\n    pass\n", queue="prio")
    with running_worker(queues=["prio.productive"], concurrency=1, name="busy", tmp_dir=tmp_path):
        blocker = engine.start_execution(flow="blocker")
        wait_until(lambda: Execution.objects.get(pk=blocker.pk).status == "RUNNING", 30)
        with transaction.atomic():  # queued while the only slot is busy, oldest first
            queued = [
                engine.start_execution(flow="job", name=f"{priority}-{n}", priority=priority)
                for priority in ("low", "normal", "high")
                for n in (1, 2)
            ]
        assert Execution.objects.get(pk=blocker.pk).status == "RUNNING"  # still busy
        ended = engine.wait_for([e.pk for e in queued], timeout=30)

    assert [e.status for e in ended] == ["ENDED_SUCCESS"] * 6
    by_start = sorted(ended, key=lambda e: e.started_at)  # type: ignore[arg-type, return-value]
    assert [e.name for e in by_start] == [
        "high-1", "high-2", "normal-1", "normal-2", "low-1", "low-2",
    ]


def test_children_inherit_their_parent_s_priority(make_flow, run_flow):
    make_flow("child", "def handler(system, this):\n    pass\n")
    make_flow("parent", """
        def handler(system, this):
            this.flow('child')
            this.flow('child', wait=False)
    """)
    parent = run_flow("parent", priority="high")

    assert (parent.status, parent.priority) == ("ENDED_SUCCESS", "high")
    children = Execution.objects.filter(parent=parent)
    assert [c.priority for c in children] == ["high", "high"]


def test_an_unknown_priority_is_refused_naming_the_field(make_flow):
    make_flow("any", "def handler(system, this):\n    pass\n")
    with pytest.raises(engine.StartError) as refused:
        engine.start_execution(flow="any", priority="urgent")
    assert refused.value.field == "priority"
    assert "high, normal, low" in refused.value.message
    assert not Execution.objects.exists()
