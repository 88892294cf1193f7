"""Records a flow lists and changes the way Cloudomation's flows do (`system.flows()`,
`system.executions(filter=...)`, `system.flow(name).save(script=...)`, `webhook.save(
is_enabled=...)`, `setting.save(value=, description=)`, ...), on a real worker, as users of
the three groups: a change needs the user's model permission, and a listing or a read of
one record the view permission, as in the REST API."""

from __future__ import annotations

import pytest

from connectors.models import Connection
from executions.models import Execution, Flow, FlowRevision, Setting, Webhook

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

NEW_SCRIPT = "def handler(system, this):\n    return this.success('version 2')\n"

SYNC = f"""
    def handler(system, this):
        target = system.flow('target')
        target.save(script={NEW_SCRIPT!r})
        return {{'revision': system.flow('target').get('revision'),
                 'flows': [f.get('name') for f in system.flows()]}}
    """


def test_a_developers_flow_changes_a_flow_and_a_revision_appears(make_flow, run_flow, user_in) -> None:
    developer = user_in("Developers")
    make_flow("target", "def handler(system, this):\n    return this.success('version 1')\n")
    make_flow("sync", SYNC)

    ended = run_flow("sync", user=developer)

    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"revision": 2, "flows": ["sync", "target"]}
    target = Flow.objects.get(name="target")
    assert target.script == NEW_SCRIPT and target.revision == 2
    newest = FlowRevision.objects.filter(flow=target).first()
    assert newest is not None and newest.revision == 2 and newest.author == developer
    assert run_flow("target").message == "version 2"


@pytest.mark.parametrize("group", ["Viewers", "Operators"])
def test_a_viewer_or_operator_may_not_change_a_flow(make_flow, run_flow, user_in, group) -> None:
    make_flow("target", "def handler(system, this):\n    return this.success('version 1')\n")
    make_flow("sync", SYNC)

    ended = run_flow("sync", user=user_in(group))

    assert ended.status == "ENDED_ERROR"
    assert "PermissionDenied" in ended.message and "line 4" in ended.message
    assert "needs the permission executions.change_flow" in ended.message
    assert Flow.objects.get(name="target").revision == 1
    assert FlowRevision.objects.filter(flow__name="target").count() == 1


def test_a_broken_script_is_refused_as_the_api_refuses_it(make_flow, run_flow, user_in) -> None:
    make_flow("target", "def handler(system, this):\n    pass\n")
    make_flow("breaker", """
        def handler(system, this):
            system.flow('target').save(script='def handler(:')
        """)
    ended = run_flow("breaker", user=user_in("Developers"))
    assert ended.status == "ENDED_ERROR"
    assert "InvalidInputError" in ended.message and "script:" in ended.message
    assert Flow.objects.get(name="target").revision == 1


WEBHOOKS_OFF = """
    def handler(system, this):
        for webhook in system.webhooks(filter={'field': 'is_enabled', 'op': 'eq', 'value': True}):
            webhook.save(is_enabled=False)
        return {'left': [w.get('name') for w in system.webhooks() if w.get('is_enabled')]}
    """


@pytest.mark.parametrize(("group", "allowed"), [("Operators", True), ("Developers", False)])
def test_webhooks_are_switched_off_by_who_may_change_them(make_flow, run_flow, user_in,
                                                          group, allowed) -> None:
    flow = make_flow("hooks-off", WEBHOOKS_OFF)
    Webhook.objects.create(name="github", flow=flow, enabled=True)
    Webhook.objects.create(name="spare", flow=flow, enabled=False)

    ended = run_flow("hooks-off", user=user_in(group))

    if allowed:
        assert ended.status == "ENDED_SUCCESS", ended.message
        assert ended.output_value == {"left": []}
        assert not Webhook.objects.get(name="github").enabled
    else:
        assert ended.status == "ENDED_ERROR"
        assert "needs the permission executions.change_webhook" in ended.message
        assert Webhook.objects.get(name="github").enabled


def test_settings_as_the_documentation_saves_and_lists_them(make_flow, run_flow, user_in) -> None:
    make_flow("settings", """
        def handler(system, this):
            system.setting('answer').save(value=42, description='some number')
            system.setting(name='old-style', value={'a': 1})
            answer = system.setting('answer')
            return {'value': answer.load('value'), 'description': answer.get('description'),
                    'old': system.setting('old-style').get('value'),
                    'names': [s.name for s in system.settings()],
                    'filtered': [s.name for s in system.settings(
                        filter={'field': 'name', 'op': 'like', 'value': 'old%'})]}
        """)
    ended = run_flow("settings", user=user_in("Developers"))
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"value": 42, "description": "some number", "old": {"a": 1},
                                  "names": ["answer", "old-style"], "filtered": ["old-style"]}
    assert Setting.objects.get(name="answer").description == "some number"


def test_a_viewer_may_read_but_not_save_a_setting(make_flow, run_flow, user_in) -> None:
    Setting.objects.create(name="answer", value=1)
    make_flow("settings", """
        def handler(system, this):
            this.save(output_value={'read': system.setting('answer').get('value')})
            system.setting('answer').save(value=2)
        """)
    ended = run_flow("settings", user=user_in("Viewers"))
    assert ended.status == "ENDED_ERROR" and ended.output_value == {"read": 1}
    assert "needs the permission executions.change_setting" in ended.message
    assert Setting.objects.get(name="answer").value == 1


def test_a_developers_flow_saves_a_connection(make_flow, run_flow, user_in) -> None:
    make_flow("connect-setup", """
        def handler(system, this):
            system.connection('api').save(connection_type='REST',
                                          value={'url': 'http://127.0.0.1:9'})
            return system.connector('api').get('value')  # Engine 7+'s name, the same record
        """)
    ended = run_flow("connect-setup", user=user_in("Developers"))
    assert ended.status == "ENDED_SUCCESS", ended.message
    conn = Connection.objects.get(name="api")
    assert conn.connector_type == "REST" and conn.value == {"url": "http://127.0.0.1:9"}
    assert ended.output_value == {"url": "http://127.0.0.1:9"}


LISTER = """
    def handler(system, this):
        def names(f):
            return sorted(e.get('name') for e in system.executions(filter=f))
        me = this.get('id')
        return {
            'eq': names({'field': 'name', 'op': 'eq', 'value': 'first'}),
            'in': names({'field': 'name', 'op': 'in', 'value': ['first', 'second']}),
            'like': names({'field': 'name', 'op': 'like', 'value': 'sec%'}),
            'ne': names([{'field': 'flow_name', 'op': 'eq', 'value': 'noop'},
                         {'field': 'name', 'op': 'ne', 'value': 'first'}]),
            'lt': names({'field': 'id', 'op': 'lt', 'value': me}),
            'gt': names({'field': 'id', 'op': 'gt', 'value': me}),
            'status': names({'field': 'status', 'op': 'eq', 'value': 'ENDED_SUCCESS'}),
        }
    """


def test_executions_are_listed_with_cloudomations_filter(make_flow, run_flow, user_in) -> None:
    make_flow("noop", "def handler(system, this):\n    pass\n")
    make_flow("lister", LISTER)
    for name in ("first", "second"):
        Execution.objects.filter(pk=run_flow("noop").pk).update(name=name)

    ended = run_flow("lister", user=user_in("Viewers"))

    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {
        "eq": ["first"], "in": ["first", "second"], "like": ["second"], "ne": ["second"],
        "lt": ["first", "second"], "gt": [], "status": ["first", "second"],
    }


@pytest.mark.parametrize(("expression", "named"), [
    ("{'field': 'colour', 'op': 'eq', 'value': 1}", "unknown field 'colour' of executions"),
    ("{'field': 'name', 'op': 'near', 'value': 1}", "unknown op 'near'"),
    ("{'field': 'name', 'op': 'in', 'value': 'x'}", "op 'in' takes a list"),
])
def test_a_bad_filter_ends_the_flow_naming_it(make_flow, run_flow, user_in, expression, named) -> None:
    make_flow("bad-filter", f"def handler(system, this):\n    system.executions(filter={expression})\n")
    ended = run_flow("bad-filter", user=user_in("Viewers"))
    assert ended.status == "ENDED_ERROR"
    assert "InvalidInputError" in ended.message and named in ended.message
    assert "line 2" in ended.message


def test_a_user_without_view_permission_may_not_list(make_flow, run_flow, user_in) -> None:
    make_flow("lister", "def handler(system, this):\n    system.flows()\n")
    ended = run_flow("lister", user=user_in(None))
    assert ended.status == "ENDED_ERROR"
    assert "may not view flows: that needs the permission executions.view_flow" in ended.message
    assert Execution.objects.filter(flow__name="lister").count() == 1


def test_an_execution_without_a_user_uses_settings_but_changes_no_flow(make_flow, run_flow) -> None:
    make_flow("target", "def handler(system, this):\n    pass\n")
    make_flow("scheduled", """
        def handler(system, this):
            system.setting('last-run').save(value=this.get('id'))
            system.setting('lock').acquire(timeout=5)
            system.flow('target').save(script='def handler(system, this):\\n    return 1\\n')
        """)
    ended = run_flow("scheduled")  # as a schedule starts it: no user
    assert ended.status == "ENDED_ERROR"
    # Reading the flow, before its save, is refused already: it needs view_flow.
    assert "an execution without a user may not view flow 'target'" in ended.message
    assert Setting.objects.get(name="last-run").value == ended.pk
    assert Flow.objects.get(name="target").revision == 1


@pytest.mark.parametrize(("call", "named"), [
    ("connection_type='NOPE', value={}", "connector_type: unknown connector type 'NOPE'"),
    ("connection_type='REST', value={}, vault_secrets=['x']", "cannot save vault_secrets"),
])
def test_a_connection_is_validated_as_the_api_validates_it(make_flow, run_flow, user_in,
                                                           call, named) -> None:
    make_flow("bad-connection", f"def handler(system, this):\n    system.connection('c').save({call})\n")
    ended = run_flow("bad-connection", user=user_in("Developers"))
    assert ended.status == "ENDED_ERROR"
    assert "InvalidInputError" in ended.message and named in ended.message
    assert not Connection.objects.filter(name="c").exists()


@pytest.mark.parametrize(("read", "listing", "permission"), [
    ("system.flow('target').get('script')", "system.flows()", "executions.view_flow"),
    ("system.flow({target_id}, by='id').get('name')", "system.flows()", "executions.view_flow"),
    ("system.webhook('github').get('is_enabled')", "system.webhooks()", "executions.view_webhook"),
    ("system.setting('answer').get('value')", "system.settings()", "executions.view_setting"),
    ("system.setting('answer').exists()", "system.settings()", "executions.view_setting"),
    ("system.connection('api').get('value')", None, "connectors.view_connection"),
])
def test_reading_one_record_needs_the_view_permission_a_listing_needs(
        make_flow, run_flow, user_in, read, listing, permission) -> None:
    target = make_flow("target", "def handler(system, this):\n    pass\n")
    Webhook.objects.create(name="github", flow=target, enabled=True)
    Setting.objects.create(name="answer", value=42)
    Connection.objects.create(name="api", connector_type="REST", value={"url": "http://127.0.0.1:9"})
    read = read.format(target_id=target.pk)
    make_flow("reader", f"def handler(system, this):\n    return {{'read': {read}}}\n")
    nobody = user_in(None)

    refused = run_flow("reader", user=nobody)

    assert refused.status == "ENDED_ERROR" and refused.output_value == {}
    assert "PermissionDenied" in refused.message and "line 2" in refused.message
    assert f"user {nobody.username!r} may not view " in refused.message
    assert f"that needs the permission {permission}" in refused.message
    if listing is not None:  # the same refusal as the listing's
        make_flow("lister", f"def handler(system, this):\n    {listing}\n")
        listed = run_flow("lister", user=nobody)
        assert listed.status == "ENDED_ERROR" and "PermissionDenied" in listed.message
        assert f"that needs the permission {permission}" in listed.message
    read_by_viewer = run_flow("reader", user=user_in("Viewers"))
    assert read_by_viewer.status == "ENDED_SUCCESS", read_by_viewer.message
