"""A flow runs on a real worker: outputs, logs, settings, errors pointing at the flow line."""

from __future__ import annotations

import pytest

from executions.models import Execution, ExecutionLog, Setting

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]


def test_the_design_flow_ends_in_success_with_its_childs_outputs(make_flow, run_flow):
    make_flow("my-child-flow", """
        def handler(system, this):
            value = this.get('input_value')['custom_parameter']
            this.save(output_value={'echo': value})
            return this.success('child done')
    """)
    make_flow("parent", """
        import flow_api

        def handler(system: flow_api.System, this: flow_api.Execution):
            child = this.flow('my-child-flow', custom_parameter='value')
            this.log('computed', total=child.get('output_value'))
            this.set_output('child_said', child.get('output_value')['echo'])
            return this.success('all done')
    """)
    parent = run_flow("parent")
    assert parent.status == "ENDED_SUCCESS"
    assert parent.message == "all done"
    assert parent.output_value == {"child_said": "value"}
    child = Execution.objects.get(parent=parent)
    assert child.status == "ENDED_SUCCESS"
    assert child.root_id == parent.pk
    assert child.input_value == {"custom_parameter": "value"}
    assert child.message == "child done"
    entry = ExecutionLog.objects.get(execution=parent)
    assert entry.text == "computed"
    assert entry.data == {"total": {"echo": "value"}}


def test_a_handler_taking_inputs_gets_them_and_may_return_outputs(make_flow, run_flow):
    make_flow("adder", """
        def handler(system, this, inputs):
            return {'sum': inputs['a'] + inputs['b']}
    """)
    execution = run_flow("adder", {"a": 2, "b": 3})
    assert execution.status == "ENDED_SUCCESS"
    assert execution.output_value == {"sum": 5}


def test_a_flow_reads_and_writes_settings(make_flow, run_flow):
    Setting.objects.create(name="greeting", value={"text": "hello"})
    make_flow("settings-user", """
        def handler(system, this):
            text = system.setting('greeting').get('value')['text']
            system.setting('counter').save(value=41)
            n = system.setting('counter').get('value') + 1
            missing = system.setting('nope').exists()
            this.save(output_value={'text': text, 'n': n, 'missing': missing})
    """)
    execution = run_flow("settings-user")
    assert execution.status == "ENDED_SUCCESS", execution.message
    assert execution.output_value == {"text": "hello", "n": 42, "missing": False}
    assert Setting.objects.get(name="counter").value == 41


def test_this_error_ends_the_execution_with_its_message(make_flow, run_flow):
    make_flow("refuser", """
        def handler(system, this):
            return this.error('not today')
    """)
    execution = run_flow("refuser")
    assert execution.status == "ENDED_ERROR"
    assert execution.message == "not today"


def test_a_script_with_a_syntax_error_ends_in_error_naming_the_line(run_flow):
    from executions import engine

    execution = engine.start_execution(
        type="SCRIPT", script="def handler(system, this):\n    x = (\n"
    )
    ended = engine.wait_for([execution.pk], timeout=30)[0]
    assert ended.status == "ENDED_ERROR"
    assert "SyntaxError" in ended.message
    assert "line 2" in ended.message


def test_a_script_without_handler_ends_in_error_saying_so(run_flow):
    from executions import engine

    execution = engine.start_execution(type="SCRIPT", script="x = 1\n")
    ended = engine.wait_for([execution.pk], timeout=30)[0]
    assert ended.status == "ENDED_ERROR"
    assert "no handler" in ended.message


def test_a_handler_with_a_wrong_signature_ends_in_error_saying_so(make_flow, run_flow):
    make_flow("one-arg", "def handler(this):\n    pass\n")
    execution = run_flow("one-arg")
    assert execution.status == "ENDED_ERROR"
    assert "handler must take (system, this)" in execution.message


def test_an_exception_in_the_handler_names_the_cause_and_the_flow_line(make_flow, run_flow):
    make_flow("divider", """
        def helper(n):
            return 10 / n

        def handler(system, this):
            this.log('about to divide')
            return helper(0)
    """)
    execution = run_flow("divider")
    assert execution.status == "ENDED_ERROR"
    assert "ZeroDivisionError: division by zero" in execution.message
    assert "line 3 of <flow divider>" in execution.message
    error_log = ExecutionLog.objects.filter(execution=execution, level="ERROR").get()
    assert "return 10 / n" in error_log.text


def test_a_flow_edited_after_a_run_runs_its_new_revision(make_flow, run_flow):
    flow = make_flow("versioned", "def handler(system, this):\n    return {'v': 1}\n")
    first = run_flow("versioned")
    flow.script = "def handler(system, this):\n    return {'v': 2}\n"
    flow.save()
    second = run_flow("versioned")
    assert (first.output_value, first.flow_revision) == ({"v": 1}, 1)
    assert (second.output_value, second.flow_revision) == ({"v": 2}, 2)


def test_an_execution_runs_the_revision_it_was_started_with_though_the_flow_changed_since(make_flow):
    """A Try of unsaved edits saves them and starts that revision: an edit saved before a
    worker takes the execution must not change what it runs."""
    from executions import engine

    from ..workers import wait_until

    flow = make_flow("pinned", "def handler(system, this):\n    return {'v': 1}\n")
    started = engine.start_execution(flow="pinned", run=False)
    flow.script = "def handler(system, this):\n    return {'v': 2}\n"
    flow.save()
    engine.run_deferred(started)
    ended = wait_until(
        lambda: Execution.objects.filter(pk=started.pk, status__in=Execution.ENDED).first(), 30
    )
    assert (ended.status, ended.output_value, ended.flow_revision) == ("ENDED_SUCCESS", {"v": 1}, 1)


def test_development_mode_is_inherited_by_children(make_flow, run_flow):
    make_flow("leaf", "def handler(system, this):\n    pass\n")
    make_flow("trunk", "def handler(system, this):\n    this.flow('leaf')\n")
    parent = run_flow("trunk", mode="development")
    assert parent.status == "ENDED_SUCCESS"
    assert Execution.objects.get(parent=parent).mode == "development"
