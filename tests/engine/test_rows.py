"""Rows read by hand-written statements (executions.engine.rows) equal what the ORM reads."""

from __future__ import annotations

import pytest
from django.utils import timezone

from executions.engine import rows
from executions.models import Execution, Flow

pytestmark = pytest.mark.django_db


def _fields(execution: Execution) -> dict[str, object]:
    return {f.attname: getattr(execution, f.attname) for f in Execution._meta.concrete_fields}


def test_an_execution_read_by_hand_equals_the_orms_row(django_user_model) -> None:
    user = django_user_model.objects.create_user("rows")
    flow = Flow.objects.create(name="rows-flow", script="def handler(system, this):\n    return None\n")
    now = timezone.now()
    parent = Execution.objects.create(type="FLOW", flow=flow, name="rows-flow", user=user, created_at=now)
    child = Execution.objects.create(
        type="SCRIPT", script="x", parent=parent, root_id=parent.pk, user=user, created_at=now,
        started_at=now, input_value={"text": "é ü", "nested": [1, 2.5, None, {"a": True}]},
        output_value={"n": 3}, status="ENDED_SUCCESS", ended_at=now, message="done",
    )

    read = {e.pk: e for e in rows.executions([parent.pk, child.pk, 10**12])}

    assert set(read) == {parent.pk, child.pk}  # an id that does not exist is left out
    for execution in (parent, child):
        assert _fields(read[execution.pk]) == _fields(Execution.objects.get(pk=execution.pk))
        assert read[execution.pk]._state.adding is False
    assert read[child.pk].user == user  # relations load on first use, as after the ORM's read


def test_a_flow_to_start_is_read_with_only_what_a_start_needs() -> None:
    flow = Flow.objects.create(name="rows-partial", script="s", retry_policy={"max_attempts": 2})

    (read,) = rows.FLOW_TO_START.where("name = %s", ["rows-partial"])

    assert (read.pk, read.name, read.retry_policy, read.revision) == (
        flow.pk, "rows-partial", {"max_attempts": 2}, flow.revision)
    assert "script" in read.get_deferred_fields()
    assert read.script == "s"  # a deferred field is read when asked for
