"""Children: synchronous without deadlock, asynchronous with wait_for, failures raise."""

from __future__ import annotations

import time

import pytest

from executions import engine
from executions.models import Execution

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]


def test_a_failing_child_raises_in_its_parent_which_can_catch_it(make_flow, run_flow):
    make_flow("bad-child", "def handler(system, this):\n    raise ValueError('boom')\n")
    make_flow("careful-parent", """
        import flow_api

        def handler(system, this):
            try:
                this.flow('bad-child')
            except flow_api.DependencyFailedError as exc:
                return this.success(f'caught: {exc}')
    """)
    parent = run_flow("careful-parent")
    assert parent.status == "ENDED_SUCCESS"
    assert parent.message.startswith("caught: flow execution")
    assert "'bad-child' ended ENDED_ERROR: ValueError: boom" in parent.message


def test_an_uncaught_failing_child_ends_its_parent_in_error_naming_the_child(make_flow, run_flow):
    make_flow("bad-child", "def handler(system, this):\n    raise ValueError('boom')\n")
    make_flow("careless-parent", "def handler(system, this):\n    this.flow('bad-child')\n")
    parent = run_flow("careless-parent")
    assert parent.status == "ENDED_ERROR"
    assert "DependencyFailedError" in parent.message
    assert "'bad-child'" in parent.message
    assert "line 2 of <flow careless-parent>" in parent.message


def test_an_unknown_child_flow_ends_the_parent_in_error_naming_it(make_flow, run_flow):
    make_flow("lost-parent", "def handler(system, this):\n    this.flow('no-such-flow')\n")
    parent = run_flow("lost-parent")
    assert parent.status == "ENDED_ERROR"
    assert "no flow named 'no-such-flow'" in parent.message


def test_a_chain_of_20_synchronous_children_completes_on_one_worker_of_concurrency_1(
    make_flow, tmp_path
):
    from ..workers import running_worker

    make_flow("link", """
        def handler(system, this, inputs):
            depth = inputs['depth']
            if depth == 0:
                return {'depth': 0}
            child = this.flow('link', depth=depth - 1)
            return {'depth': child.get('output_value')['depth'] + 1}
    """, queue="solo")
    with running_worker(queues=["solo.productive"], concurrency=1, name="solo", tmp_dir=tmp_path):
        top = engine.start_execution(flow="link", input_value={"depth": 20})
        ended = engine.wait_for([top.pk], timeout=60)[0]
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"depth": 20}
    chain = Execution.objects.filter(root=top)
    assert chain.count() == 20  # AUTOMATION_MAX_DEPTH
    assert set(chain.values_list("status", flat=True)) == {"ENDED_SUCCESS"}


def test_twenty_parents_with_five_sync_children_each_finish_on_concurrency_2(make_flow):
    make_flow("leaf", "def handler(system, this, inputs):\n    return {'n': inputs['n']}\n")
    make_flow("fan", """
        def handler(system, this):
            total = 0
            for n in range(5):
                total += this.flow('leaf', n=n).get('output_value')['n']
            return {'total': total}
    """)
    parents = [engine.start_execution(flow="fan") for _ in range(20)]
    ended = engine.wait_for([p.pk for p in parents], timeout=90)
    assert [e.status for e in ended] == ["ENDED_SUCCESS"] * 20
    assert {e.output_value["total"] for e in ended} == {10}
    assert Execution.objects.filter(parent__in=parents, status="ENDED_SUCCESS").count() == 100


def test_a_parent_fans_out_200_async_children_and_sums_their_outputs(make_flow, run_flow):
    make_flow("square", "def handler(system, this, inputs):\n    return {'sq': inputs['n'] ** 2}\n")
    make_flow("fanout", """
        def handler(system, this):
            children = [this.flow('square', n=n, run=False) for n in range(200)]
            for child in children:
                child.run_async()
            done = this.wait_for(*children)
            return {'sum': sum(c.get('output_value')['sq'] for c in done)}
    """)
    parent = run_flow("fanout", timeout=120)
    assert parent.status == "ENDED_SUCCESS", parent.message
    assert parent.output_value == {"sum": sum(n * n for n in range(200))}
    assert Execution.objects.filter(parent=parent).count() == 200


def test_run_async_starts_children_before_the_flow_s_next_call_and_only_its_own(make_flow, run_flow):
    """run_async is sent without an answer and started in batches: the children run while
    their parent goes on, and a deferred execution of another tree is left alone."""
    stranger = engine.start_execution(
        type="SCRIPT", script="def handler(system, this):\n    return {'ran': True}\n", run=False,
    )
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n")
    make_flow("starter", """
        import time
        import flow_api

        def handler(system, this, inputs):
            flow_api.Execution({'id': inputs['stranger']}, caller=this.id).run_async()
            children = [this.flow('quick', run=False) for _ in range(5)]
            for child in children:
                child.run_async()
            time.sleep(5)  # no call to the engine meanwhile: the starts went without one
            return {'all_ended': all(c.load('status') == 'ENDED_SUCCESS' for c in children)}
    """)
    parent = run_flow("starter", inputs={"stranger": stranger.pk}, timeout=60)
    assert parent.status == "ENDED_SUCCESS", parent.message
    assert parent.output_value == {"all_ended": True}
    stranger.refresh_from_db()
    assert (stranger.status, stranger.deferred) == ("PENDING", True)


def test_run_async_in_another_tree_s_name_starts_nothing(make_flow, run_flow):
    """The caller a flow's host names for run_async is checked: a flow cannot start the
    deferred children of another tree by naming that tree's execution as the caller."""
    theirs = engine.start_execution(type="SCRIPT", script="def handler(system, this):\n    pass\n", run=False)
    their_child = engine.start_execution(
        type="SCRIPT", script="def handler(system, this):\n    pass\n", run=False, parent=theirs,
    )
    make_flow("impostor", """
        import flow_api

        def handler(system, this, inputs):
            flow_api.port.get().start_children(inputs['caller'], [inputs['child']])
            this.log('sent')  # a call after the start: the start was served before it
    """)
    ended = run_flow("impostor", inputs={"caller": theirs.pk, "child": their_child.pk}, timeout=60)
    assert ended.status == "ENDED_SUCCESS", ended.message
    their_child.refresh_from_db()
    assert (their_child.status, their_child.deferred) == ("PENDING", True)


def test_wait_false_children_are_awaited_with_every_return_when(make_flow, run_flow):
    make_flow("nap", """
        import time

        def handler(system, this, inputs):
            time.sleep(inputs['s'])
            if inputs.get('fail'):
                raise RuntimeError('failed on purpose')
            return {'slept': inputs['s']}
    """)
    make_flow("waiter", """
        import flow_api

        def handler(system, this):
            rw = system.return_when
            out = {}
            a = this.flow('nap', s=0.1, wait=False)
            b = this.flow('nap', s=0.1, wait=False)
            this.wait_for(a, b, return_when=rw.ALL_SUCCEEDED)
            out['all_succeeded'] = [a.get('status'), b.get('status')]

            bad = this.flow('nap', s=0, fail=True, wait=False)
            slow = this.flow('nap', s=0.5, wait=False)
            ended = this.wait_for(bad, slow, return_when=rw.ALL_ENDED)
            out['all_ended'] = sorted(e.get('status') for e in ended)

            c = this.flow('nap', s=0, wait=False)
            this.wait_for(c, return_when=rw.FIRST_ENDED)
            out['first_ended'] = c.get('status')

            bad2 = this.flow('nap', s=0, fail=True, wait=False)
            good = this.flow('nap', s=0.2, wait=False)
            this.wait_for(bad2, good, return_when=rw.FIRST_SUCCEEDED)
            out['first_succeeded'] = good.get('status')

            bad3 = this.flow('nap', s=0, fail=True, wait=False)
            try:
                this.wait_for(bad3)
            except flow_api.DependencyFailedError:
                out['raised'] = True
            return out
    """)
    parent = run_flow("waiter", timeout=60)
    assert parent.status == "ENDED_SUCCESS", parent.message
    assert parent.output_value == {
        "all_succeeded": ["ENDED_SUCCESS", "ENDED_SUCCESS"],
        "all_ended": ["ENDED_ERROR", "ENDED_SUCCESS"],
        "first_ended": "ENDED_SUCCESS",
        "first_succeeded": "ENDED_SUCCESS",
        "raised": True,
    }


def test_a_script_child_runs_inline_source(make_flow, run_flow):
    make_flow("scripter", """
        def handler(system, this):
            src = "def handler(system, this, inputs):\\n    return {'x': inputs['x'] * 2}\\n"
            child = this.script(src, x=21)
            return child.get('output_value')
    """)
    parent = run_flow("scripter")
    assert parent.status == "ENDED_SUCCESS", parent.message
    assert parent.output_value == {"x": 42}
    assert Execution.objects.get(parent=parent).type == "SCRIPT"


def test_the_same_message_delivered_twice_runs_the_execution_once(make_flow):
    from executions.tasks import run_execution

    make_flow("counted", """
        def handler(system, this):
            s = system.setting('runs')
            s.save(value=(s.get('value') or 0) + 1)
    """)
    execution = engine.start_execution(flow="counted", run=False)
    Execution.objects.filter(pk=execution.pk).update(deferred=False)
    for _ in range(2):
        run_execution.apply_async((execution.pk,), queue="default.productive")
    ended = engine.wait_for([execution.pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS"
    import time

    from executions.models import Setting

    time.sleep(1)  # give the second delivery the time to (not) run
    assert Setting.objects.get(name="runs").value == 1


def test_children_created_with_run_false_exist_before_the_flow_s_next_call(make_flow, run_flow):
    """Written together (one INSERT on PostgreSQL), but before anything else the flow does."""
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n")
    make_flow("creator", """
        def handler(system, this):
            children = [this.flow('quick', run=False) for _ in range(30)]
            # Another call of any kind (here: a read of one of them) sees them all stored.
            seen = [c.get('status') for c in children[:3]]
            this.save(output_value={'ids': [c.get('id') for c in children], 'seen': seen})
            children[0].run()
            return {'first': children[0].get('output_value')}
    """)
    creator = run_flow("creator")
    assert creator.status == "ENDED_SUCCESS", creator.message
    ids = creator.output_value["ids"]
    assert len(set(ids)) == 30
    assert creator.output_value["seen"] == ["PENDING"] * 3
    assert creator.output_value["first"] == {"ok": True}
    rows = Execution.objects.filter(parent=creator)
    assert sorted(rows.values_list("pk", flat=True)) == sorted(ids)
    assert rows.filter(status="PENDING").count() == 29  # never run: left as created


def test_children_created_with_run_false_are_written_when_the_handler_ends(make_flow, run_flow):
    make_flow("quick", "def handler(system, this):\n    pass\n")
    make_flow("creator", """
        def handler(system, this):
            for _ in range(7):
                this.flow('quick', run=False)
    """)
    creator = run_flow("creator")
    assert creator.status == "ENDED_SUCCESS", creator.message
    assert Execution.objects.filter(parent=creator, status="PENDING").count() == 7


def test_children_created_just_before_a_cancel_end_cancelled_with_their_parent(make_flow):
    """Kept back when the cancel came (the flow made no other call since), they are written
    when its handler has stopped, and end with it rather than stay PENDING."""
    make_flow("quick", "def handler(system, this):\n    pass\n")
    make_flow("creator", """
        def handler(system, this):
            for _ in range(5):
                this.flow('quick', run=False)
            while True:
                pass
    """)
    parent = engine.start_execution(flow="creator")
    wait_until(lambda: Execution.objects.get(pk=parent.pk).status == "RUNNING", 30)
    time.sleep(1.0)  # its five calls are made by now, and it loops
    engine.cancel_execution(parent)
    assert engine.wait_stopped([parent.pk])
    children = Execution.objects.filter(parent=parent)
    assert children.count() == 5
    assert set(children.values_list("status", flat=True)) == {"ENDED_CANCELLED"}
