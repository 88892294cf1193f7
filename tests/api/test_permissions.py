"""Who may do what: Viewers read, Developers edit flows and try, Operators run and cancel."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from executions import engine
from executions.models import Execution, Flow

# No worker: on_commit never fires inside the test transaction, so nothing is queued.
pytestmark = pytest.mark.django_db

SCRIPT = "def handler(system, this):\n    return this.success('hi')\n"


def _client_in(django_user_model, group: str | None) -> APIClient:
    user = django_user_model.objects.create_user(f"user-{group}", password="x" * 12)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def flow() -> Flow:
    return Flow.objects.create(name="hello", script=SCRIPT)


@pytest.fixture
def viewer(django_user_model) -> APIClient:
    return _client_in(django_user_model, "Viewers")


@pytest.fixture
def developer(django_user_model) -> APIClient:
    return _client_in(django_user_model, "Developers")


@pytest.fixture
def operator(django_user_model) -> APIClient:
    return _client_in(django_user_model, "Operators")


def _start(client: APIClient, mode: str):
    return client.post("/api/executions/", {"flow": "hello", "mode": mode}, format="json")


def test_the_three_groups_exist_after_migrating():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "Viewers", "Developers", "Operators"
    }
    operators = set(Group.objects.get(name="Operators").permissions.values_list("codename",
                                                                                 flat=True))
    assert {"run_execution", "try_execution", "change_webhook", "change_schedule"} <= operators
    developers = set(Group.objects.get(name="Developers").permissions.values_list("codename",
                                                                                   flat=True))
    assert {"try_execution", "change_flow"} <= developers
    assert "run_execution" not in developers


def test_a_viewer_reads_everything_and_changes_nothing(viewer, flow):
    execution = engine.start_execution(flow="hello")

    assert viewer.get("/api/flows/").status_code == 200
    assert viewer.get("/api/flows/hello/").status_code == 200
    assert viewer.get("/api/executions/").json()["count"] == 1
    assert viewer.get(f"/api/executions/{execution.pk}/logs/").status_code == 200
    assert viewer.get("/api/settings/").status_code == 200
    assert viewer.get("/api/webhooks/").status_code == 200

    refused = viewer.patch("/api/flows/hello/", {"description": "x"}, format="json")
    assert refused.status_code == 403 and refused.json()["detail"]
    assert viewer.post("/api/settings/", {"name": "s"}, format="json").status_code == 403
    assert _start(viewer, "development").status_code == 403
    assert _start(viewer, "productive").status_code == 403
    assert viewer.post(f"/api/executions/{execution.pk}/cancel/").status_code == 403
    assert Execution.objects.count() == 1


def test_a_developer_edits_flows_and_tries_but_may_not_run_productively(developer, flow):
    assert developer.patch("/api/flows/hello/", {"description": "x"}, format="json").status_code == 200
    assert developer.post("/api/flows/", {"name": "new", "script": SCRIPT},
                          format="json").status_code == 201

    tried = _start(developer, "development")
    assert tried.status_code == 201
    assert tried.json()["mode"] == "development"

    refused = _start(developer, "productive")
    assert refused.status_code == 403
    assert "executions.run_execution" in refused.json()["detail"]
    assert Execution.objects.count() == 1

    # Cancel what they may start; not a productive execution of someone else.
    assert developer.post(f"/api/executions/{tried.json()['id']}/cancel/").status_code == 200
    productive = engine.start_execution(flow="hello")
    assert developer.post(f"/api/executions/{productive.pk}/cancel/").status_code == 403
    assert developer.post("/api/webhooks/", {"name": "w", "flow": "hello"},
                          format="json").status_code == 403


def test_an_operator_runs_cancels_and_edits_webhooks_but_not_flows(operator, flow):
    ran = _start(operator, "productive")
    assert ran.status_code == 201
    assert ran.json()["mode"] == "productive"
    starter = Execution.objects.get(pk=ran.json()["id"]).user
    assert starter is not None and starter.username == "user-Operators"

    cancelled = operator.post(f"/api/executions/{ran.json()['id']}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "ENDED_CANCELLED"

    created = operator.post("/api/webhooks/", {"name": "w", "flow": "hello"}, format="json")
    assert created.status_code == 201
    assert operator.post("/api/webhooks/w/rotate-key/").status_code == 200
    assert operator.patch("/api/flows/hello/", {"description": "x"}, format="json").status_code == 403


def test_nobody_sets_up_a_webhook_in_a_mode_they_could_not_start(django_user_model, flow):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("hooker", password="x" * 12)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_webhook", "view_webhook", "try_execution"])
    )
    client = APIClient()
    client.force_authenticate(user)

    refused = client.post("/api/webhooks/", {"name": "w", "flow": "hello"}, format="json")
    assert refused.status_code == 400
    assert "run_execution" in refused.json()["mode"][0]
    allowed = client.post("/api/webhooks/", {"name": "w", "flow": "hello", "mode": "development"},
                          format="json")
    assert allowed.status_code == 201


def test_a_user_without_any_group_is_refused_with_403(django_user_model, flow):
    nobody = _client_in(django_user_model, None)

    assert nobody.get("/api/flows/").status_code == 403
    assert nobody.get("/api/executions/").status_code == 403
    assert _start(nobody, "development").status_code == 403
