"""Settings as locks (`setting.acquire(timeout=None)` / `release()`, LockTimeoutError) and
the atomic `setting.list_append(value)`, on a real worker with two processes.

The issue's measurement, scaled: N flows (LOCK_TEST_FLOWS, 200 by default; the issue ran
2,000) append their id to one setting. With `get()` + `save()` appends are lost when two
flows interleave; with `acquire()` around it, or with `list_append`, none may be.
"""

from __future__ import annotations

import os
import time

import pytest

from executions import engine
from executions.models import Execution, Setting

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

FLOWS = int(os.environ.get("LOCK_TEST_FLOWS", "200"))

APPENDERS = {
    "get-save": """
        def handler(system, this):
            setting = system.setting('entries')
            setting.save((setting.get('value') or []) + [this.get('id')])
        """,
    "acquire": """
        def handler(system, this):
            setting = system.setting('entries')
            setting.acquire(timeout=120)
            try:
                setting.save((setting.get('value') or []) + [this.get('id')])
            finally:
                setting.release()
        """,
    "list_append": """
        def handler(system, this):
            system.setting('entries').list_append(this.get('id'))
        """,
}

HOLDER = """
    def handler(system, this):
        system.setting('lock').acquire()
        this.sleep(30)
    """


def _run_many(name: str, count: int) -> tuple[list[int], float]:
    started = time.monotonic()
    ids = [engine.start_execution(flow=name).pk for _ in range(count)]
    wait_until(
        lambda: Execution.objects.filter(pk__in=ids, status__in=Execution.ENDED).count() == count,
        timeout=max(120, count * 0.5), interval=0.2,
    )
    return ids, time.monotonic() - started


@pytest.mark.parametrize("variant", list(APPENDERS))
def test_appends_of_many_flows_on_two_processes(make_flow, variant) -> None:
    make_flow(f"append-{variant}", APPENDERS[variant])
    Setting.objects.filter(name="entries").delete()

    ids, seconds = _run_many(f"append-{variant}", FLOWS)

    failed = list(Execution.objects.filter(pk__in=ids).exclude(status="ENDED_SUCCESS")
                  .values_list("message", flat=True)[:3])
    stored: list[int] = list(Setting.objects.get(name="entries").value or [])
    lost = len(set(ids) - set(stored))
    print(f"\n[setting locks] {variant}: {FLOWS} flows on 2 worker processes in {seconds:.1f} s "
          f"({FLOWS / seconds:.0f}/s): {len(stored)} entries stored, {lost} lost")
    assert not failed, failed
    if variant != "get-save":
        assert lost == 0 and sorted(stored) == sorted(ids)
        assert Setting.objects.get(name="entries").locked_by is None
    # get()+save() loses appends whenever two flows interleave; how many varies from run to
    # run (the figure is printed), so it is not asserted here.


def _holding(make_flow) -> Execution:
    make_flow("holder", HOLDER)
    holder = engine.start_execution(flow="holder")
    wait_until(lambda: Setting.objects.filter(name="lock", locked_by=holder.pk).exists(), 30)
    return holder


def test_acquire_times_out_while_another_execution_holds_the_lock(make_flow, run_flow) -> None:
    holder = _holding(make_flow)
    make_flow("impatient", """
        import time
        import flow_api

        def handler(system, this):
            started = time.monotonic()
            try:
                system.setting('lock').acquire(timeout=0.5)
            except flow_api.LockTimeoutError as exc:
                this.set_output('error', str(exc))
                this.set_output('timeout_exceeded', isinstance(exc, flow_api.TimeoutExceededError))
            this.set_output('waited', time.monotonic() - started)
        """)

    ended = run_flow("impatient")

    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["timeout_exceeded"] is True
    assert f"locked by execution {holder.pk}" in ended.output_value["error"]
    assert 0.5 <= ended.output_value["waited"] < 5
    assert Setting.objects.get(name="lock").locked_by_id == holder.pk

    engine.cancel_execution(holder.pk)  # its end releases the lock
    wait_until(lambda: Setting.objects.get(name="lock").locked_by_id is None, 15)


def test_a_lock_whose_holder_ended_is_free_for_the_next(make_flow, run_flow) -> None:
    make_flow("careless", """
        def handler(system, this):
            system.setting('lock').acquire()
            raise RuntimeError('forgot to release')
        """)
    make_flow("next", """
        def handler(system, this):
            setting = system.setting('lock')
            setting.acquire(timeout=5)
            setting.save('mine')
            setting.release()
        """)

    careless = run_flow("careless")
    assert careless.status == "ENDED_ERROR" and "forgot to release" in careless.message
    assert Setting.objects.get(name="lock").locked_by is None  # released as it ended

    # A holder that ended without the release at its end (e.g. its worker died): free too.
    Setting.objects.filter(name="lock").update(locked_by=careless)
    ended = run_flow("next")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert Setting.objects.get(name="lock").value == "mine"
    assert Setting.objects.get(name="lock").locked_by is None


def test_cancel_interrupts_a_waiting_acquire(make_flow) -> None:
    holder = _holding(make_flow)
    make_flow("waiter", """
        def handler(system, this):
            system.setting('lock').acquire()
            this.set_output('acquired', True)
        """)
    waiter = engine.start_execution(flow="waiter")
    wait_until(lambda: Execution.objects.get(pk=waiter.pk).status == "RUNNING", 30)
    time.sleep(1)  # well into its wait

    started = time.monotonic()
    engine.cancel_execution(waiter.pk)
    ended = engine.wait_for([waiter.pk], timeout=10)[0]

    assert ended.status == "ENDED_CANCELLED"
    assert "acquired" not in ended.output_value
    assert time.monotonic() - started < 10
    assert Setting.objects.get(name="lock").locked_by_id == holder.pk
    # The worker process that waited is free again: it runs the next flow.
    make_flow("quick", "def handler(system, this):\n    return {'ok': True}\n")
    quick = engine.start_execution(flow="quick")
    assert engine.wait_for([quick.pk], timeout=15)[0].status == "ENDED_SUCCESS"
    engine.cancel_execution(holder.pk)


def test_a_flow_cannot_release_a_lock_another_execution_holds(make_flow, run_flow) -> None:
    holder = _holding(make_flow)
    make_flow("thief", """
        import flow_api

        def handler(system, this):
            other = this.get('input_value')['holder']
            try:
                system.setting('lock').release()
            except flow_api.FlowApiError as exc:
                this.set_output('own_release', f'{type(exc).__name__}: {exc}')
            for op in ('release', 'acquire'):
                try:
                    flow_api.port.get().setting_lock(other, op, 'lock')
                except flow_api.FlowApiError as exc:
                    this.set_output(op, f'{type(exc).__name__}: {exc}')
        """)

    ended = run_flow("thief", {"holder": holder.pk})

    assert ended.status == "ENDED_SUCCESS", ended.message
    out = ended.output_value
    assert out["own_release"].startswith("FlowApiError") and f"locked by execution {holder.pk}" in out["own_release"]
    assert out["release"].startswith("PermissionDenied"), out
    assert out["acquire"].startswith("PermissionDenied"), out
    assert Setting.objects.get(name="lock").locked_by_id == holder.pk
    engine.cancel_execution(holder.pk)


def test_list_append_starts_a_list_and_refuses_a_value_that_is_not_one(make_flow, run_flow) -> None:
    Setting.objects.create(name="scalar", value={"a": 1})
    make_flow("appender", """
        import flow_api

        def handler(system, this):
            fresh = system.setting('fresh').list_append({'n': 1}).list_append(2)
            this.set_output('fresh', fresh.get('value'))
            try:
                system.setting('scalar').list_append(3)
            except flow_api.InvalidInputError as exc:
                this.set_output('refused', str(exc))
            with system.setting('fresh') as locked:  # a lock as a context manager
                locked.list_append(3)
        """)

    ended = run_flow("appender")

    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["fresh"] == [{"n": 1}, 2]
    assert "setting 'scalar' holds a dict, not a list" in ended.output_value["refused"]
    assert Setting.objects.get(name="scalar").value == {"a": 1}
    assert Setting.objects.get(name="fresh").value == [{"n": 1}, 2, 3]
    assert Setting.objects.get(name="fresh").locked_by is None


def test_the_admin_shows_who_holds_a_lock(make_flow, admin, client) -> None:
    holder = _holding(make_flow)
    client.force_login(admin)

    listed = client.get("/admin/executions/setting/").content.decode()
    page = client.get(f"/admin/executions/setting/{Setting.objects.get(name='lock').pk}/change/")

    assert "FLOW holder" in listed
    assert page.status_code == 200 and "FLOW holder" in page.content.decode()
    engine.cancel_execution(holder.pk)
