"""Flows catch errors by Cloudomation's exception names (`flow_api.ResourceNotFoundError`,
`DependencyTimeoutError`, ...), and today's names still catch them (they are base classes)."""

from __future__ import annotations

import pytest

import flow_api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def test_the_hierarchy_follows_cloudomation() -> None:
    assert flow_api.CloudomationException is flow_api.FlowApiError
    for name in ("DependencyTimeoutError", "MessageResponseTimeoutError", "LockTimeoutError"):
        assert issubclass(getattr(flow_api, name), flow_api.TimeoutExceededError)
    for name in (
        "ResourceNotFoundError", "PermissionDenied", "InternalError", "MissingInputError",
        "InvalidInputError", "ExtraInputError", "DependencyFailedError", "TimeoutExceededError",
    ):
        assert issubclass(getattr(flow_api, name), flow_api.CloudomationException)


def test_a_flow_catches_a_missing_flow_as_resource_not_found(make_flow, run_flow) -> None:
    make_flow("catcher", """
        import flow_api

        def handler(system, this):
            try:
                this.flow('no-such-flow')
            except flow_api.ResourceNotFoundError as exc:
                this.set_output('caught', str(exc))
            return this.success('done')
        """)
    ended = run_flow("catcher")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert "no flow named 'no-such-flow'" in ended.output_value["caught"]


def test_a_flow_catches_a_child_that_takes_too_long_by_either_name(make_flow, run_flow) -> None:
    # On a queue no worker serves: it stays PENDING, so the wait runs out.
    make_flow("dawdler", "def handler(system, this):\n    pass\n", queue="nowhere")
    make_flow("impatient", """
        import flow_api

        def handler(system, this):
            child = this.flow('dawdler', wait=False)
            try:
                this.wait_for(child, timeout=0.5)
            except flow_api.DependencyTimeoutError as exc:
                this.set_output('new_name', isinstance(exc, flow_api.TimeoutExceededError))
            child.cancel()
        """)
    ended = run_flow("impatient", timeout=30)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"new_name": True}
