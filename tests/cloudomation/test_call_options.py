"""Cloudomation's call options on `this.flow`, `this.task`, `this.connect` are options,
not inputs: each works or is accepted with no effect, and none reaches the child's inputs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse

from executions.models import Execution, ExecutionLog

from ..connector_peers import HttpPeer, http_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

MASK = "********"

ECHO = """
def handler(system, this):
    return {'seen': this.get('input_value')}
"""


@pytest.fixture
def http() -> Iterator[HttpPeer]:
    with http_server() as peer:
        yield peer


def only_child(parent: Execution) -> Execution:
    children = list(Execution.objects.filter(parent=parent))
    assert len(children) == 1, children
    return children[0]


def test_no_call_option_ends_up_in_the_childs_inputs(make_flow, run_flow) -> None:
    make_flow("echo", ECHO)
    make_flow("caller", """
        def handler(system, this):
            child = this.flow(
                'echo',
                input_value={'region': 'eu', 'size': 1},
                size=2,
                retention_time=1,
                pass_user_token=True,
                location_inheritance='created_by',
                orphan=True,
                roles=['admin'],
                savepoint_retention=3,
            )
            return {'child_saw': child.get('output_value')['seen']}
        """)
    ended = run_flow("caller")
    assert ended.status == "ENDED_SUCCESS", ended.message
    # input_value is the inputs; keyword inputs win over it; the options are gone.
    assert ended.output_value == {"child_saw": {"region": "eu", "size": 2}}
    assert only_child(ended).input_value == {"region": "eu", "size": 2}


def test_init_gives_the_childs_record_fields(make_flow, run_flow) -> None:
    make_flow("echo", ECHO)
    make_flow("initialiser", """
        def handler(system, this):
            child = this.flow('echo', init={'input_value': {'user': 'ann'}, 'name': 'add ann',
                                            'priority': 'low'})
            return {'seen': child.get('output_value')['seen'], 'name': child.get('name'),
                    'priority': child.get('priority')}
        """)
    ended = run_flow("initialiser")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"seen": {"user": "ann"}, "name": "add ann", "priority": "low"}


def test_init_refuses_a_field_it_does_not_know(make_flow, run_flow) -> None:
    make_flow("echo", ECHO)
    make_flow("typo", """
        def handler(system, this):
            this.flow('echo', init={'input_valeu': {}})
        """)
    ended = run_flow("typo")
    assert ended.status == "ENDED_ERROR"
    assert "init: unknown execution field 'input_valeu'" in ended.message


def test_task_and_connect_take_their_inputs_as_a_dict(make_flow, run_flow, http) -> None:
    make_flow("rest-dict", """
        def handler(system, this, inputs):
            old = this.task('REST', inputs={'url': inputs['base'] + '/json'},
                            pass_user_token=True, protect_inputs=['url'])
            new = this.connect(connector_type='REST', inputs={'url': inputs['base'] + '/text'},
                               retention_time=5)
            return {'json': old.get('output_value')['json'],
                    'text': new.get('output_value')['text']}
        """)
    ended = run_flow("rest-dict", {"base": http.base})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"json": {"hello": "world", "n": 1}, "text": "plain text"}
    inputs = [c.input_value for c in Execution.objects.filter(parent=ended).order_by("id")]
    assert inputs == [{"url": http.base + "/json"}, {"url": http.base + "/text"}]


def test_priority_is_applied_to_the_child(make_flow, run_flow) -> None:
    make_flow("echo", ECHO)
    make_flow("urgent", """
        def handler(system, this):
            high = this.flow('echo', priority='high')
            low = this.flow('echo', priority=-5)
            plain = this.flow('echo')
            return {'seen': [c.get('priority') for c in (high, low, plain)],
                    'inputs': [c.get('input_value') for c in (high, low, plain)]}
        """)
    ended = run_flow("urgent")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"seen": ["high", "low", "normal"], "inputs": [{}, {}, {}]}
    rows = Execution.objects.filter(parent=ended).order_by("id")
    assert [c.priority for c in rows] == ["high", "low", "normal"]


def test_an_unknown_priority_is_refused(make_flow, run_flow) -> None:
    make_flow("echo", ECHO)
    make_flow("bad-priority", "def handler(system, this):\n    this.flow('echo', priority='asap')\n")
    ended = run_flow("bad-priority")
    assert ended.status == "ENDED_ERROR"
    assert "priority must be one of high, normal, low" in ended.message


def test_max_runtime_minutes_is_the_childs_timeout(make_flow, run_flow) -> None:
    make_flow("echo", ECHO)
    make_flow("bounded", """
        def handler(system, this):
            return {'m': this.flow('echo', max_runtime_minutes=2).get('max_runtime_minutes')}
        """)
    ended = run_flow("bounded")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"m": 2}
    assert only_child(ended).timeout == 120


def test_protected_inputs_and_outputs_are_masked_in_the_api_the_admin_and_the_log(
    make_flow, run_flow, api, admin, client,
) -> None:
    make_flow("login", """
        def handler(system, this, inputs):
            this.log('logging in as', inputs['user'], 'with', inputs['password'])
            print('the password is', inputs['password'])
            this.set_output(token='tok-secret-42', user=inputs['user'])
            this.save(message='got tok-secret-42')
        """)
    make_flow("protector", """
        def handler(system, this):
            child = this.flow('login', user='ann', password='hunter2-pw',
                              protect_inputs=['password'], protect_outputs='token')
            # The flow itself still reads the values it was given.
            return {'token': child.get('output_value')['token'] == 'tok-secret-42',
                    'password': child.get('input_value')['password'] == 'hunter2-pw'}
        """)
    ended = run_flow("protector")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"token": True, "password": True}
    child = only_child(ended)
    assert child.protect_inputs == ["password"] and child.protect_outputs == ["token"]

    shown = api.get(f"/api/executions/{child.pk}/").json()
    assert shown["input_value"] == {"user": "ann", "password": MASK}
    assert shown["output_value"] == {"token": MASK, "user": "ann"}
    assert shown["message"] == f"got {MASK}"
    listed = api.get("/api/executions/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert "hunter2-pw" not in str(rows) and "tok-secret-42" not in str(rows)

    texts = list(ExecutionLog.objects.filter(execution=child).values_list("text", flat=True))
    assert any(f"with {MASK}" in t for t in texts), texts
    assert all("hunter2-pw" not in t for t in texts), texts
    logs = api.get(f"/api/executions/{child.pk}/logs/").content.decode()
    assert "hunter2-pw" not in logs

    client.force_login(admin)
    page = client.get(reverse("admin:executions_execution_change", args=[child.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "hunter2-pw" not in html and "tok-secret-42" not in html
    assert MASK in html


def test_wait_all_ended_lets_the_flow_read_a_failed_childs_status_and_message(
    make_flow, run_flow, http,
) -> None:
    make_flow("failing", "def handler(system, this):\n    return this.error('HttpError 409: exists')\n")
    make_flow("tolerant", """
        def handler(system, this, inputs):
            vm = this.flow('failing', wait=system.return_when.ALL_ENDED)
            status, message = vm.get('status', 'message')
            call = this.connect(connector_type='REST', url=inputs['base'] + '/status/409',
                                wait=system.return_when.ALL_ENDED)
            if status == 'ENDED_ERROR' and '409' in message:
                this.log('the vm exists already')
            return {'flow': [status, message], 'rest': call.load('status')}
        """)
    ended = run_flow("tolerant", {"base": http.base})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value["flow"] == ["ENDED_ERROR", "HttpError 409: exists"]
    assert ended.output_value["rest"] == "ENDED_ERROR"


def test_wait_true_still_raises_for_a_failed_child(make_flow, run_flow) -> None:
    make_flow("failing", "def handler(system, this):\n    return this.error('no')\n")
    make_flow("strict", """
        def handler(system, this):
            try:
                this.flow('failing', wait=system.return_when.ALL_SUCCEEDED)
            except flow_api.DependencyFailedError:
                this.set_output('raised', True)
        """)
    ended = run_flow("strict")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"raised": True}
