"""Reading and ending executions the way Cloudomation's flows do: `get`/`load` of several
fields as a tuple, the record fields, `end()`, `clone()`, and the System helpers."""

from __future__ import annotations

import pytest

from executions.models import Execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def test_get_and_load_of_several_fields_return_a_tuple(make_flow, run_flow) -> None:
    make_flow("child", "def handler(system, this):\n    this.save(message='half way')\n")
    make_flow("reader", """
        def handler(system, this):
            child = this.flow('child')
            name, status = child.get('name', 'status')
            loaded = child.load('status', 'message')
            return {'get': [name, status], 'load': list(loaded), 'state': child.load('state'),
                    'is_tuple': isinstance(loaded, tuple),
                    'one': child.get('status'),
                    'old_default': child.get('message', 'none'),
                    'missing_default': child.get('ended_at', 'x') is not None}
        """)
    ended = run_flow("reader")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {
        "get": ["child", "ENDED_SUCCESS"], "load": ["ENDED_SUCCESS", "half way"],
        "state": "ENDED_SUCCESS", "is_tuple": True, "one": "ENDED_SUCCESS", "old_default": "half way",
        "missing_default": True,
    }


def test_the_record_fields_of_cloudomation_are_there(make_flow, run_flow, admin) -> None:
    make_flow("fields", """
        def handler(system, this):
            user_name, flow_name = this.get('user_name', 'flow_name')
            names = ('created_at', 'modified_at', 'creation_time', 'is_productive',
                     'is_paused', 'priority', 'flow_id', 'created_by', 'client_name')
            return {'user_name': user_name, 'flow_name': flow_name,
                    **dict(zip(names, this.load(*names)))}
        """)
    ended = run_flow("fields", user=admin, priority="high")
    assert ended.status == "ENDED_SUCCESS", ended.message
    out = ended.output_value
    assert out["user_name"] == "root" and out["flow_name"] == "fields"
    assert out["created_at"] == out["creation_time"] == ended.created_at.isoformat()
    assert out["modified_at"] >= out["created_at"]
    assert out["is_productive"] is True and out["is_paused"] is False
    assert out["priority"] == "high"
    assert out["flow_id"] == ended.flow_id and out["created_by"] == admin.pk
    assert out["client_name"] == "default"  # the installation, as system.get_own_client()


def test_an_unknown_field_is_refused_naming_the_known_ones(make_flow, run_flow) -> None:
    make_flow("bad-field", "def handler(system, this):\n    this.get('status', 'colour', 'name')\n")
    ended = run_flow("bad-field")
    assert ended.status == "ENDED_ERROR"
    assert "unknown execution field 'colour'" in ended.message and "user_name" in ended.message


@pytest.mark.parametrize(("status", "expected"), [
    ("success", "ENDED_SUCCESS"), ("error", "ENDED_ERROR"), ("ENDED_ERROR", "ENDED_ERROR"),
])
def test_end_ends_the_execution_with_status_and_message(make_flow, run_flow, status, expected):
    make_flow("ender", f"""
        def handler(system, this):
            this.end({status!r}, 'ended by end()')
            this.set_output('after', True)
        """)
    ended = run_flow("ender")
    assert ended.status == expected
    assert ended.message == "ended by end()"
    assert ended.output_value == {}


def test_clone_starts_the_same_flow_with_the_same_inputs(make_flow, run_flow) -> None:
    make_flow("echo", "def handler(system, this):\n    return {'seen': this.get('input_value')}\n")
    make_flow("cloner", """
        def handler(system, this):
            first = this.flow('echo', region='eu')
            again = first.clone(wait=True)
            other = first.clone(region='us', wait=True)
            return {'again': again.get('output_value'), 'other': other.get('output_value'),
                    'distinct': len({first.id, again.id, other.id})}
        """)
    ended = run_flow("cloner")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"again": {"seen": {"region": "eu"}},
                                  "other": {"seen": {"region": "us"}}, "distinct": 3}
    assert Execution.objects.filter(parent=ended).count() == 3


def test_system_user_and_env_name(make_flow, run_flow, admin) -> None:
    make_flow("who", """
        def handler(system, this):
            me = system.user('root')
            return {'name': me.get('name'), 'active': me.get('is_active'),
                    'nobody': system.user('no-such-user').exists(),
                    'own': system.get_own_user().get('name'),
                    'env': system.get_env_name()}
        """)
    ended = run_flow("who", user=admin)
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"name": "root", "active": True, "nobody": False,
                                  "own": "root", "env": "default"}


def test_save_accepts_retention_time_and_expires_with_no_effect(make_flow, run_flow) -> None:
    make_flow("keeper", """
        def handler(system, this):
            this.save(retention_time=1)
            this.save(output_value={'kept': True}, expires='2030-01-01T00:00:00+00:00')
            this.save(name='renamed', message='half way', retention_time=1, expires=None)
            return {'name': this.load('name')}
        """)
    ended = run_flow("keeper")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"kept": True, "name": "renamed"}
    assert ended.name == "renamed"


def test_flow_api_is_bound_without_an_import(make_flow, run_flow) -> None:
    # Cloudomation's new-flow template: annotations, no import line.
    make_flow("template", """
        def handler(system: flow_api.System, this: flow_api.Execution):
            this.set_output(ok=isinstance(this, flow_api.Execution))
            return this.success('all done')
        """)
    ended = run_flow("template")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"ok": True}
