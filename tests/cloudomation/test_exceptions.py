"""Flows catch errors by Cloudomation's exception names (`flow_api.ResourceNotFoundError`,
`DependencyTimeoutError`, `EngineException`, ...), and today's names still catch them (they
are base classes); the lifecycle signals end a flow through its `except` clauses."""

from __future__ import annotations

import pytest

import flow_api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def test_the_hierarchy_follows_cloudomation() -> None:
    assert flow_api.CloudomationException is flow_api.FlowApiError
    assert flow_api.EngineException is flow_api.FlowApiError
    assert issubclass(flow_api.SchemaValidationError, flow_api.InvalidInputError)
    assert flow_api.exceptions.SchemaValidationError is flow_api.SchemaValidationError
    # The lifecycle signals end the handler: not errors a flow's `except Exception` catches.
    for name in ("ExecutionSuccess", "ExecutionError", "ExecutionCancel"):
        signal = getattr(flow_api, name)
        assert issubclass(signal, flow_api.LifecycleSignal)
        assert not issubclass(signal, Exception)
    assert flow_api.ExecutionCancel is flow_api.ExecutionTerminated
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


def test_a_flow_catches_by_the_engines_names(make_flow, run_flow) -> None:
    make_flow("engine-names", """
        import flow_api

        def handler(system: flow_api.System, this: flow_api.Execution):
            try:
                system.file('no-such-file').get('content')
            except flow_api.EngineException as exc:
                this.set_output('engine', type(exc).__name__)
            try:
                raise flow_api.exceptions.SchemaValidationError('input_value: not an object')
            except flow_api.InvalidInputError as exc:
                this.set_output('schema', str(exc))
            return this.success('done')
        """)
    ended = run_flow("engine-names")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"engine": "ResourceNotFoundError",
                                  "schema": "input_value: not an object"}


@pytest.mark.parametrize(("ending", "status", "signal"), [
    ("this.success('over')", "ENDED_SUCCESS", "ExecutionSuccess"),
    ("this.error('over')", "ENDED_ERROR", "ExecutionError"),
    ("this.end('error', 'over')", "ENDED_ERROR", "ExecutionError"),
])
def test_the_lifecycle_signals_end_the_flow_through_its_except_clauses(make_flow, run_flow,
                                                                       ending, status, signal):
    make_flow("signals", f"""
        import flow_api

        def handler(system, this):
            try:
                try:
                    return {ending}
                except flow_api.CloudomationException:
                    this.set_output('swallowed', True)
            except flow_api.LifecycleSignal as signal:
                this.set_output('signal', type(signal).__name__)
                raise
        """)
    ended = run_flow("signals")
    assert ended.status == status and ended.message == "over"
    assert ended.output_value == {"signal": signal}

