"""An execution tree is bounded: AUTOMATION_MAX_DEPTH and AUTOMATION_MAX_DESCENDANTS.

A child past either limit is refused with `flow_api.LimitExceededError`, which the flow can
catch; uncaught, it ends the execution that tried in error, naming the setting and the line.
"""

from __future__ import annotations

import time

import pytest

from executions.models import Execution

from ..workers import running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _start_and_wait(api, flow: str, wait: float = 60) -> dict:
    answer = api.post("/api/executions/", {"flow": flow, "wait": wait}, format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()


def test_a_flow_that_calls_itself_stops_at_max_depth_naming_the_setting(make_flow, api):
    make_flow("ouroboros", """
        def handler(system, this):
            this.flow('ouroboros')
    """)
    began = time.monotonic()
    root = _start_and_wait(api, "ouroboros")
    assert time.monotonic() - began < 50
    assert root["status"] == "ENDED_ERROR"
    tree = Execution.objects.filter(root_id=root["id"])
    assert tree.count() == 20  # the default AUTOMATION_MAX_DEPTH, not hundreds
    deepest = tree.order_by("-depth").first()
    assert deepest is not None and deepest.depth == 20
    assert deepest.status == "ENDED_ERROR"
    assert "LimitExceededError" in deepest.message
    assert "AUTOMATION_MAX_DEPTH=20" in deepest.message
    assert "line 3 of <flow ouroboros>" in deepest.message


def test_a_flow_may_catch_the_depth_limit(make_flow, api):
    make_flow("careful-recursion", """
        import flow_api

        def handler(system, this, inputs):
            try:
                child = this.flow('careful-recursion')
            except flow_api.LimitExceededError as exc:
                return {'levels': 0, 'why': str(exc)}
            out = child.get('output_value')
            return {'levels': out['levels'] + 1, 'why': out['why']}
    """)
    root = _start_and_wait(api, "careful-recursion")
    assert root["status"] == "ENDED_SUCCESS", root["message"]
    assert root["output_value"]["levels"] == 20
    assert "the limit is AUTOMATION_MAX_DEPTH=20" in root["output_value"]["why"]


def test_a_tree_stops_at_max_descendants_across_workers(make_flow, api, tmp_path):
    make_flow("fan-leaf", "def handler(system, this):\n    return None\n", queue="tree")
    make_flow("fan-out", """
        import flow_api

        def handler(system, this):
            started = []
            for n in range(10):
                started.append(this.flow('fan-leaf', wait=False))
            return {'started': len(started)}
    """, queue="tree")
    with running_worker(
        queues=["tree.productive"], concurrency=2, name="tree", tmp_dir=tmp_path,
        extra_env={"AUTOMATION_MAX_DESCENDANTS": "6"},
    ):
        root = _start_and_wait(api, "fan-out")
        assert root["status"] == "ENDED_ERROR"
        assert "LimitExceededError" in root["message"]
        assert "the limit is AUTOMATION_MAX_DESCENDANTS=6" in root["message"]
        assert "line 7 of <flow fan-out>" in root["message"]
        assert Execution.objects.filter(root_id=root["id"]).count() == 6
        assert Execution.objects.get(pk=root["id"]).descendant_count == 6
