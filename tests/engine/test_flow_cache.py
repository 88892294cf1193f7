"""A worker keeps the flows its children start (no read per child), and hears every change."""

from __future__ import annotations

import pytest

from executions.models import Execution, Flow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]

PARENT = """
def handler(system, this):
    outputs = []
    for _ in range(3):
        outputs.append(this.flow('kid').get('output_value').get('n'))
    return {'kids': outputs}
"""


def test_a_child_started_after_its_flow_was_saved_runs_the_new_revision(make_flow, run_flow):
    make_flow("kid", "def handler(system, this):\n    return {'n': 1}\n")
    make_flow("parent", PARENT)
    assert run_flow("parent").output_value == {"kids": [1, 1, 1]}  # the worker keeps 'kid'

    kid = Flow.objects.get(name="kid")
    kid.script = "def handler(system, this):\n    return {'n': 2}\n"
    kid.save()

    again = run_flow("parent")  # at once: the save told the worker
    assert again.output_value == {"kids": [2, 2, 2]}, again.message
    revisions = set(Execution.objects.filter(parent=again).values_list("flow_revision", flat=True))
    assert revisions == {kid.revision}


def test_a_child_of_a_flow_deleted_meanwhile_is_refused_naming_it(make_flow, run_flow):
    make_flow("kid", "def handler(system, this):\n    return {'n': 1}\n")
    make_flow("parent", PARENT)
    assert run_flow("parent").status == "ENDED_SUCCESS"

    Flow.objects.get(name="kid").delete()

    gone = run_flow("parent")
    assert gone.status == "ENDED_ERROR"
    assert "no flow named 'kid'" in gone.message


def test_a_flow_disabled_by_a_bulk_update_is_refused_at_once(make_flow, run_flow):
    make_flow("kid", "def handler(system, this):\n    return {'n': 1}\n")
    make_flow("parent", PARENT)
    assert run_flow("parent").status == "ENDED_SUCCESS"

    Flow.objects.filter(name="kid").update(enabled=False)  # no save(), no post_save

    refused = run_flow("parent")
    assert refused.status == "ENDED_ERROR"
    assert "flow 'kid' is disabled" in refused.message
