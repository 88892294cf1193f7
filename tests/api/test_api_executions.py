"""Starting and watching executions through `/api/executions/` on a real worker."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from executions.models import Execution

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]

GREETER = """
def handler(system, this):
    name = this.get('input_value').get('name', 'world')
    this.log('greeting', name=name)
    this.log('done')
    return this.success(f'hello {name}')
"""
SLEEPER = """
import time

def handler(system, this):
    this.log('going to sleep')
    time.sleep(60)
"""
PARENT = """
def handler(system, this):
    this.flow('greeter', {'name': 'child one'})
    this.flow('greeter', {'name': 'child two'})
"""
FAILING = """
def handler(system, this):
    raise RuntimeError('boom')
"""


def _start(api: APIClient, **body):
    return api.post("/api/executions/", body, format="json")


def test_starting_a_flow_with_wait_answers_201_with_the_ended_execution(make_flow, api, admin):
    make_flow("greeter", GREETER)

    answer = _start(api, flow="greeter", input_value={"name": "Ada"}, wait=30)

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["type"] == "FLOW"
    assert body["status"] == "ENDED_SUCCESS"
    assert body["message"] == "hello Ada"
    assert body["input_value"] == {"name": "Ada"}
    assert body["mode"] == "productive"
    assert answer["Location"].endswith(f"/api/executions/{body['id']}/")
    for field in ("id", "name", "output_value", "parent", "root", "created_at", "started_at",
                  "ended_at"):
        assert field in body
    execution = Execution.objects.get(pk=body["id"])
    assert execution.user == admin
    assert execution.trigger == Execution.Trigger.API


def test_starting_without_wait_answers_at_once_and_the_execution_ends_later(make_flow, api):
    make_flow("greeter", GREETER)

    answer = _start(api, type="FLOW", flow="greeter")

    assert answer.status_code == 201
    assert answer.json()["status"] in ("PENDING", "RUNNING", "ENDED_SUCCESS")
    url = f"/api/executions/{answer.json()['id']}/"
    ended = wait_until(
        lambda: api.get(url).json()["status"] == "ENDED_SUCCESS" and api.get(url).json(), 20
    )
    assert ended["message"] == "hello world"


def test_a_wait_that_runs_out_answers_201_with_the_current_state(make_flow, api):
    make_flow("sleeper", SLEEPER)

    started = time.monotonic()
    answer = _start(api, flow="sleeper", wait=1)

    assert answer.status_code == 201
    assert answer.json()["status"] in ("PENDING", "RUNNING")
    assert 0.9 < time.monotonic() - started < 10
    api.post(f"/api/executions/{answer.json()['id']}/cancel/")


def test_a_script_execution_runs_inline_source(api):
    source = "def handler(system, this):\n    return this.success('from a script')\n"

    answer = _start(api, type="SCRIPT", script=source, mode="development", wait=30)

    assert answer.status_code == 201, answer.json()
    assert answer.json()["type"] == "SCRIPT"
    assert answer.json()["mode"] == "development"
    assert answer.json()["status"] == "ENDED_SUCCESS"
    assert answer.json()["message"] == "from a script"


def test_a_failing_flow_ends_in_error_with_the_line_in_its_message(make_flow, api):
    make_flow("failing", FAILING)

    body = _start(api, flow="failing", wait=30).json()

    assert body["status"] == "ENDED_ERROR"
    assert "boom" in body["message"] and "line 3" in body["message"]


def test_cancel_ends_a_running_execution_and_a_second_cancel_is_a_conflict(make_flow, api):
    make_flow("sleeper", SLEEPER)
    pk = _start(api, flow="sleeper").json()["id"]
    wait_until(lambda: api.get(f"/api/executions/{pk}/").json()["status"] == "RUNNING", 20)

    answer = api.post(f"/api/executions/{pk}/cancel/")

    assert answer.status_code == 200
    assert answer.json()["status"] == "ENDED_CANCELLED"
    again = api.post(f"/api/executions/{pk}/cancel/")
    assert again.status_code == 409
    assert "already ended" in again.json()["detail"]


def test_logs_are_listed_in_order_and_can_be_tailed_after_an_id(make_flow, api):
    make_flow("greeter", GREETER)
    pk = _start(api, flow="greeter", input_value={"name": "Bo"}, wait=30).json()["id"]

    logs = api.get(f"/api/executions/{pk}/logs/").json()["results"]

    assert [entry["text"] for entry in logs] == ["greeting", "done"]
    assert logs[0]["data"] == {"name": "Bo"}
    assert logs[0]["level"] == "INFO"
    tail = api.get(f"/api/executions/{pk}/logs/", {"after": logs[0]["id"]}).json()["results"]
    assert [entry["text"] for entry in tail] == ["done"]
    assert api.get(f"/api/executions/{pk}/logs/", {"after": logs[1]["id"]}).json()["results"] == []
    bad = api.get(f"/api/executions/{pk}/logs/", {"after": "soon"})
    assert bad.status_code == 400 and "after" in bad.json()


def test_children_are_listed_and_inherit_mode_and_user(make_flow, api, admin):
    make_flow("greeter", GREETER)
    make_flow("parent", PARENT)
    parent = _start(api, flow="parent", mode="development", wait=30).json()
    assert parent["status"] == "ENDED_SUCCESS"

    children = api.get(f"/api/executions/{parent['id']}/children/").json()["results"]

    assert [c["message"] for c in children] == ["hello child one", "hello child two"]
    assert {c["parent"] for c in children} == {parent["id"]}
    assert {c["root"] for c in children} == {parent["id"]}
    assert {c["mode"] for c in children} == {"development"}
    assert {e.user for e in Execution.objects.filter(parent_id=parent["id"])} == {admin}


def test_the_list_filters_by_status_type_mode_flow_parent_and_creation_time(make_flow, api):
    make_flow("greeter", GREETER)
    make_flow("failing", FAILING)
    make_flow("parent", PARENT)
    ok = _start(api, flow="greeter", wait=30).json()
    bad = _start(api, flow="failing", mode="development", wait=30).json()
    parent = _start(api, flow="parent", wait=30).json()

    def ids(**query):
        answer = api.get("/api/executions/", query)
        assert answer.status_code == 200, answer.json()
        return [e["id"] for e in answer.json()["results"]]

    assert bad["id"] in ids(status="ENDED_ERROR") and ok["id"] not in ids(status="ENDED_ERROR")
    assert ids(mode="development") == [bad["id"]]
    assert ids(flow="failing") == [bad["id"]]
    assert len(ids(parent=parent["id"])) == 2
    assert len(ids(root=parent["id"])) == 2
    assert ids(type="SCRIPT") == []
    assert ids(created_after=bad["created_at"]) == sorted(
        [bad["id"], parent["id"], *ids(parent=parent["id"])], reverse=True
    )
    assert ok["id"] in ids(created_before=bad["created_at"])
    assert ids(ordering="id")[0] == ok["id"]
    page = api.get("/api/executions/", {"limit": 2}).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"]
    wrong = api.get("/api/executions/", {"status": "SLEEPING"})
    assert wrong.status_code == 400 and "status" in wrong.json()


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"flow": "nope"}, 404, "flow"),
        ({}, 400, "flow"),
        ({"type": "SCRIPT"}, 400, "script"),
        ({"type": "SCHEDULE", "flow": "greeter"}, 400, "type"),
        ({"flow": "greeter", "mode": "fast"}, 400, "mode"),
        ({"flow": "greeter", "input_value": [1, 2]}, 400, "input_value"),
        ({"flow": "greeter", "wait": -1}, 400, "wait"),
        ({"flow": "greeter", "wait": 100000}, 400, "wait"),
        ({"flow": "off"}, 400, "flow"),
    ],
)
def test_bad_start_requests_are_refused_naming_the_field(make_flow, api, body, code, field):
    make_flow("greeter", GREETER)
    make_flow("off", GREETER, enabled=False)

    answer = _start(api, **body)

    assert answer.status_code == code, answer.json()
    assert field in answer.json()
    assert Execution.objects.count() == 0


def test_an_unknown_execution_is_a_json_404(api):
    answer = api.get("/api/executions/999999/")
    assert answer.status_code == 404
    assert answer.json()["detail"]
    assert api.post("/api/executions/999999/cancel/").status_code == 404
    assert api.get("/api/executions/999999/logs/").status_code == 404
    assert api.get("/api/executions/not-a-number/").json()["detail"]


def test_a_wait_on_a_queue_no_worker_serves_is_answered_within_seconds(api, make_flow):
    make_flow("stranded", "def handler(system, this):\n    return {'ran': True}\n", queue="nowhere")
    started = time.monotonic()
    answer = api.post("/api/executions/", {"flow": "stranded", "wait": 60}, format="json")
    took = time.monotonic() - started
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "PENDING"  # left for a worker that may come
    assert "no worker serves queue nowhere.productive" in body["warning"]
    assert "no worker serves queue nowhere.productive" in body["waiting_reason"]
    assert took < 10, f"answered after {took:.1f} s"


def _hgetall_calls() -> int:
    import redis
    from django.conf import settings

    stats = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5).info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


def test_a_page_of_pending_executions_says_why_from_one_read_of_the_workers_reports(api, make_flow):
    from executions.engine import workers_status

    make_flow("stranded", "def handler(system, this):\n    return None\n", queue="nowhere")
    for _ in range(30):
        assert api.post("/api/executions/", {"flow": "stranded"}, format="json").status_code == 201
    workers_status.forget()
    before = _hgetall_calls()
    page = api.get("/api/executions/", {"flow": "stranded"}).json()["results"]
    reads = _hgetall_calls() - before
    assert [row["waiting_reason"] for row in page] == ["no worker serves queue nowhere.productive"] * 30
    assert reads == 1, f"the workers' reports were read {reads} times for one page"


def test_a_wait_on_a_served_queue_has_no_warning(api, make_flow):
    make_flow("served", "def handler(system, this):\n    return {'ran': True}\n")
    body = api.post("/api/executions/", {"flow": "served", "wait": 30}, format="json").json()
    assert body["status"] == "ENDED_SUCCESS" and "warning" not in body
