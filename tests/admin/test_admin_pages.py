"""The admin as a user meets it, through Django's test client (no browser, no worker):
flows with Run and Try, revisions, execution pages and the dashboard."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from executions.models import Execution, ExecutionLog, Flow, FlowRevision

pytestmark = pytest.mark.django_db

SCRIPT = textwrap.dedent(
    """\
    def handler(system, this):
        this.log('hello')
        return this.success('done')
    """
)


@pytest.fixture
def staff(db: None) -> Any:
    """A staff user with the given permissions (codenames of the executions app)."""

    def make(*codenames: str) -> Client:
        user = User.objects.create_user(f"staff{len(codenames)}", password="pw-staff-123", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="executions", codename__in=codenames)
        )
        client = Client()
        client.force_login(user)
        return client

    return make


def flow_form(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "script": script, "description": "", "enabled": "on", "timeout": "",
            "queue": "", **extra}


def test_a_flow_that_does_not_compile_is_refused_naming_the_line(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    bad = "def handler(system, this):\n    x = (\n    return 1\n"
    response = client.post(reverse("admin:executions_flow_add"), flow_form("broken", bad))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["script"]
    assert any("line 2" in e or "line 3" in e for e in errors), errors
    assert b"errorlist" in response.content
    assert not Flow.objects.filter(name="broken").exists()


def test_a_flow_without_a_handler_is_refused_naming_it(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    response = client.post(
        reverse("admin:executions_flow_add"), flow_form("nohandler", "def main():\n    pass\n")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["script"]
    assert any("handler(system, this)" in e for e in errors), errors
    assert not Flow.objects.filter(name="nohandler").exists()


def test_each_save_keeps_a_revision_with_its_author(admin_client_user: Any) -> None:
    client, user = admin_client_user
    response = client.post(reverse("admin:executions_flow_add"), flow_form("greet", SCRIPT))
    assert response.status_code == 302
    flow = Flow.objects.get(name="greet")
    changed = SCRIPT.replace("'done'", "'changed'")
    client.post(reverse("admin:executions_flow_change", args=[flow.pk]), flow_form("greet", changed))
    flow.refresh_from_db()
    assert flow.revision == 2
    revisions = list(flow.revisions.order_by("revision"))
    assert [(r.revision, r.author, "changed" in r.script) for r in revisions] == [
        (1, user, False), (2, user, True),
    ]


def test_the_flow_page_has_the_editor_run_and_try_and_its_revisions(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    flow = Flow.objects.create(name="page", script=SCRIPT)
    html = client.get(reverse("admin:executions_flow_change", args=[flow.pk])).content.decode()
    assert "executions/vendor/codemirror/codemirror.js" in html
    assert 'class="flow-script' in html
    assert 'value="development"' in html and ">Try<" in html
    assert 'value="productive"' in html and ">Run<" in html
    assert reverse("admin:executions_flow_revision", args=[flow.pk, 1]) in html
    assert "//" not in html.split("codemirror.js")[0].rsplit('src="', 1)[1]  # served locally


def test_try_starts_a_development_execution_and_goes_to_its_page(admin_client_user: Any) -> None:
    client, user = admin_client_user
    flow = Flow.objects.create(name="trying", script=SCRIPT)
    response = client.post(
        reverse("admin:executions_flow_start", args=[flow.pk]),
        {"mode": "development", "input_value": '{"who": "world"}'},
    )
    execution = Execution.objects.get(flow=flow)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:executions_execution_change", args=[execution.pk])
    assert (execution.mode, execution.input_value, execution.trigger, execution.user) == (
        "development", {"who": "world"}, "admin", user,
    )
    assert execution.flow_revision == 1


@pytest.mark.parametrize(
    ("typed", "says"),
    [("{not json", "Not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_invalid_json_inputs_show_a_form_error_and_start_nothing(
    admin_client_user: Any, typed: str, says: str
) -> None:
    client, _ = admin_client_user
    flow = Flow.objects.create(name="strict", script=SCRIPT)
    response = client.post(
        reverse("admin:executions_flow_start", args=[flow.pk]),
        {"mode": "productive", "input_value": typed},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert says in html and 'class="errorlist"' in html
    assert typed.replace("{", "") in html  # what was typed is kept
    assert not Execution.objects.exists()


def test_a_user_who_may_only_try_cannot_run(staff: Any) -> None:
    client = staff("view_flow", "try_execution", "view_execution")
    flow = Flow.objects.create(name="guarded", script=SCRIPT)
    html = client.get(reverse("admin:executions_flow_change", args=[flow.pk])).content.decode()
    assert ">Try<" in html and ">Run<" not in html
    url = reverse("admin:executions_flow_start", args=[flow.pk])
    assert client.post(url, {"mode": "productive"}).status_code == 403
    assert client.post(url, {"mode": "development"}).status_code == 302
    assert list(Execution.objects.values_list("mode", flat=True)) == ["development"]


def test_a_disabled_flow_is_refused_with_a_form_error(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    flow = Flow.objects.create(name="off", script=SCRIPT, enabled=False)
    response = client.post(reverse("admin:executions_flow_start", args=[flow.pk]), {"mode": "development"})
    assert response.status_code == 400
    assert "disabled" in response.content.decode()


def test_list_actions_start_the_selected_flows_with_the_typed_inputs(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    one = Flow.objects.create(name="one", script=SCRIPT)
    two = Flow.objects.create(name="two", script=SCRIPT)
    url = reverse("admin:executions_flow_changelist")
    response = client.post(url, {"action": "run_flows", "_selected_action": [one.pk],
                                 "input_value": '{"n": 1}'})
    execution = Execution.objects.get(flow=one)
    assert response["Location"] == reverse("admin:executions_execution_change", args=[execution.pk])
    assert (execution.mode, execution.input_value) == ("productive", {"n": 1})

    client.post(url, {"action": "try_flows", "_selected_action": [one.pk, two.pk]})
    assert Execution.objects.filter(mode="development").count() == 2

    response = client.post(url, {"action": "try_flows", "_selected_action": [one.pk],
                                 "input_value": "nope"}, follow=True)
    assert "Not valid JSON" in response.content.decode()
    assert Execution.objects.count() == 3


def test_the_flow_list_shows_the_last_execution_status_and_time(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    flow = Flow.objects.create(name="listed", script=SCRIPT)
    Execution.objects.create(flow=flow, name="listed", queue="default", status="ENDED_SUCCESS")
    last = Execution.objects.create(flow=flow, name="listed", queue="default", status="ENDED_ERROR")
    Flow.objects.create(name="never-run", script=SCRIPT)
    html = client.get(reverse("admin:executions_flow_changelist")).content.decode()
    assert f'href="{reverse("admin:executions_execution_change", args=[last.pk])}"' in html
    assert "status-ENDED_ERROR" in html and "ago" in html and "never" in html


def test_the_execution_page_shows_values_message_log_children_and_revision(
    admin_client_user: Any,
) -> None:
    client, _ = admin_client_user
    flow = Flow.objects.create(name="parent", script=SCRIPT)
    parent = Execution.objects.create(
        flow=flow, flow_revision=1, name="parent", queue="default", status="ENDED_ERROR",
        input_value={"city": "Vienna"}, output_value={"total": 42},
        message="ValueError: boom (line 3 of parent.py)", mode="development",
    )
    child = Execution.objects.create(name="kid", parent=parent, root=parent, queue="default",
                                     status="ENDED_CANCELLED")
    grandchild = Execution.objects.create(name="grandkid", parent=child, root=parent,
                                          queue="default", status="ENDED_SUCCESS")
    ExecutionLog.objects.create(execution=parent, text="step one", data={"rows": 3})
    html = client.get(reverse("admin:executions_execution_change", args=[parent.pk])).content.decode()
    assert "&quot;city&quot;: &quot;Vienna&quot;" in html and "&quot;total&quot;: 42" in html
    assert "boom (line 3 of parent.py)" in html and "is-error" in html
    assert "step one" in html and "&quot;rows&quot;: 3" in html
    for node in (child, grandchild):
        assert reverse("admin:executions_execution_change", args=[node.pk]) in html
    assert "status-ENDED_CANCELLED" in html
    assert reverse("admin:executions_flow_revision", args=[flow.pk, 1]) in html
    assert ">Run again (revision 1)<" in html and ">Switch to productive<" in html and ">Cancel<" not in html


def test_the_live_view_answers_new_log_entries_and_the_status(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    execution = Execution.objects.create(name="live", queue="default", status="RUNNING")
    first = ExecutionLog.objects.create(execution=execution, text="first")
    ExecutionLog.objects.create(execution=execution, text="second", level="WARNING")
    url = reverse("admin:executions_execution_live", args=[execution.pk])
    data = client.get(url, {"after": first.pk}).json()
    assert [(e["text"], e["level"]) for e in data["logs"]] == [("second", "WARNING")]
    assert data["execution"]["status"] == "RUNNING" and data["ended"] is False
    assert client.get(url, {"after": "junk"}).status_code == 200


def test_run_again_starts_the_same_inputs_in_the_same_mode(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    flow = Flow.objects.create(name="again", script=SCRIPT)
    old = Execution.objects.create(flow=flow, name="again", queue="default", mode="development",
                                   status="ENDED_SUCCESS", input_value={"x": 1})
    response = client.post(reverse("admin:executions_execution_rerun", args=[old.pk]))
    new = Execution.objects.exclude(pk=old.pk).get()
    assert response["Location"] == reverse("admin:executions_execution_change", args=[new.pk])
    assert (new.flow, new.input_value, new.mode, new.trigger) == (flow, {"x": 1}, "development", "admin")


def test_cancel_ends_what_no_process_runs_and_asks_the_running_to_stop(
    admin_client_user: Any, settings: Any
) -> None:
    settings.AUTOMATION = {**settings.AUTOMATION, "CANCEL_GRACE_SECONDS": 0.1}
    client, _ = admin_client_user
    parent = Execution.objects.create(name="long", queue="default", status="WAITING", parked=True)
    child = Execution.objects.create(name="kid", parent=parent, root=parent, queue="default")
    answer = client.post(reverse("admin:executions_execution_cancel", args=[parent.pk]), follow=True)
    parent.refresh_from_db()
    child.refresh_from_db()
    assert (parent.status, child.status) == ("ENDED_CANCELLED", "ENDED_CANCELLED")
    assert "Cancelled execution" in answer.content.decode()

    # A process runs this one (no worker here to stop it): it is asked, and says so.
    running = Execution.objects.create(name="busy", queue="default", status="RUNNING")
    answer = client.post(reverse("admin:executions_execution_cancel", args=[running.pk]), follow=True)
    running.refresh_from_db()
    assert (running.status, running.stop_status) == ("RUNNING", "ENDED_CANCELLED")
    page = answer.content.decode()
    assert "was asked to stop and its code still runs" in page
    assert "stopping: it ends" in page


def test_switching_to_productive_changes_only_the_mode_and_needs_the_run_permission(
    admin_client_user: Any, staff: Any
) -> None:
    client, _ = admin_client_user
    execution = Execution.objects.create(name="dev", queue="default", mode="development",
                                         status="ENDED_SUCCESS", output_value={"a": 1})
    url = reverse("admin:executions_execution_promote", args=[execution.pk])
    assert staff("view_execution", "try_execution").post(url).status_code == 403
    client.post(url)
    execution.refresh_from_db()
    assert (execution.mode, execution.status, execution.output_value) == (
        "productive", "ENDED_SUCCESS", {"a": 1},
    )
    assert Execution.objects.count() == 1


def test_execution_records_cannot_be_added_edited_or_deleted(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    execution = Execution.objects.create(name="fixed", queue="default", status="ENDED_SUCCESS")
    assert client.get(reverse("admin:executions_execution_add")).status_code == 403
    client.post(reverse("admin:executions_execution_change", args=[execution.pk]), {"name": "x"})
    assert client.get(reverse("admin:executions_execution_delete", args=[execution.pk])).status_code == 403
    execution.refresh_from_db()
    assert execution.name == "fixed"


def test_the_execution_list_colours_filters_and_searches(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    ok = Execution.objects.create(name="alpha", queue="default", status="ENDED_SUCCESS")
    bad = Execution.objects.create(name="beta", queue="default", status="ENDED_ERROR", mode="development")
    url = reverse("admin:executions_execution_changelist")
    html = client.get(url).content.decode()
    assert "status-ENDED_SUCCESS" in html and "status-ENDED_ERROR" in html
    filtered = client.get(url, {"status__exact": "ENDED_ERROR"}).context["cl"].result_list
    assert list(filtered) == [bad]
    assert list(client.get(url, {"mode__exact": "productive"}).context["cl"].result_list) == [ok]
    assert list(client.get(url, {"q": "alph"}).context["cl"].result_list) == [ok]
    assert list(client.get(url, {"q": str(bad.pk)}).context["cl"].result_list) == [bad]


def test_the_revision_diff_shows_removed_and_added_lines_and_restore_brings_one_back(
    admin_client_user: Any,
) -> None:
    client, user = admin_client_user
    flow = Flow.objects.create(name="history", script=SCRIPT)
    flow.script = SCRIPT.replace("'hello'", "'goodbye'")
    flow.save()
    url = reverse("admin:executions_flow_revisions", args=[flow.pk])
    html = client.get(url, {"a": 1, "b": 2}).content.decode()
    assert 'class="diff-del"' in html and "this.log(&#x27;hello&#x27;)" in html
    assert 'class="diff-add"' in html and "this.log(&#x27;goodbye&#x27;)" in html
    assert "There is no revision 9" in client.get(url, {"a": 9, "b": 2}).content.decode()

    response = client.post(reverse("admin:executions_flow_restore", args=[flow.pk, 1]))
    assert response["Location"] == reverse("admin:executions_flow_change", args=[flow.pk])
    flow.refresh_from_db()
    assert (flow.revision, flow.script) == (3, SCRIPT)
    newest = FlowRevision.objects.get(flow=flow, revision=3)
    assert (newest.author, newest.script) == (user, SCRIPT)


def test_the_dashboard_counts_executions_by_status_with_links(admin_client_user: Any) -> None:
    client, _ = admin_client_user
    for status in ("ENDED_SUCCESS", "ENDED_SUCCESS", "ENDED_ERROR", "RUNNING"):
        Execution.objects.create(name=f"e-{status}", queue="default", status=status,
                                 message="it broke" if status == "ENDED_ERROR" else "")
    response = client.get(reverse("admin:index"))
    html = response.content.decode()
    assert 'id="automation-dashboard"' in html
    assert "it broke" in html and "Running now" in html
    dash = response.context["windows"]
    assert dash[0]["total"] == 4
    counts = {row["status"]: row["count"] for row in dash[0]["statuses"]}
    assert counts == {"ENDED_SUCCESS": 2, "ENDED_ERROR": 1, "RUNNING": 1}
    follow = client.get(next(r["url"] for r in dash[0]["statuses"] if r["status"] == "ENDED_ERROR"))
    assert [e.status for e in follow.context["cl"].result_list] == ["ENDED_ERROR"]
    assert json.loads(json.dumps(response.context["running_count"])) == 1
