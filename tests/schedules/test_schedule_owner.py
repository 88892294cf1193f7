"""A schedule's firings run as its owner, with the owner's rights when they fire (issue 19,
item 2): on a real worker, an owner who was deactivated or left the group that may run
productive makes the firing end in error saying so."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.utils import timezone

from executions import engine, permissions
from executions.models import Execution, Schedule
from executions.tasks import fire_schedule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

ECHO = """
def handler(system, this):
    return {'ran': True}
"""


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    """A user whose only right to run productive is the Operators group."""
    permissions.sync_groups(apps, {"Operators": permissions.GROUPS["Operators"]})
    user = django_user_model.objects.create_user("oper2", password="p" * 12)
    user.groups.add(Group.objects.get(name="Operators"))
    return user


def _fired(schedule: Schedule) -> Execution:
    pk = fire_schedule(schedule.pk, timezone.now().isoformat())
    assert pk is not None, "nothing was fired"
    return engine.wait_for([pk], timeout=30)[0]


def test_a_firing_runs_its_flow_as_the_schedules_owner(make_flow, operator):
    schedule = Schedule.objects.create(
        name="nightly", flow=make_flow("echo", ECHO), interval_seconds=60, owner=operator
    )

    firing = _fired(schedule)

    assert firing.status == "ENDED_SUCCESS", firing.message
    child = Execution.objects.get(parent=firing)
    assert child.status == "ENDED_SUCCESS" and child.output_value == {"ran": True}
    assert (firing.user_id, child.user_id) == (operator.pk, operator.pk)


def test_a_firing_whose_owner_was_deactivated_ends_in_error_saying_so(make_flow, operator):
    schedule = Schedule.objects.create(
        name="nightly", flow=make_flow("echo", ECHO), interval_seconds=60, owner=operator
    )
    operator.is_active = False
    operator.save()

    firing = _fired(schedule)

    assert firing.status == "ENDED_ERROR"
    assert "schedule 'nightly' is orphaned: its owner 'oper2' is deactivated" in firing.message
    assert not Execution.objects.filter(parent=firing).exists()  # the flow never started


def test_a_firing_whose_owner_left_the_operators_ends_in_error_saying_so(make_flow, operator):
    schedule = Schedule.objects.create(
        name="nightly", flow=make_flow("echo", ECHO), interval_seconds=60, owner=operator
    )
    operator.groups.clear()  # still active, but may no longer run productive

    firing = _fired(schedule)

    assert firing.status == "ENDED_ERROR"
    assert (
        "schedule 'nightly' is orphaned: its owner 'oper2' may no longer start productive "
        "executions"
    ) in firing.message
    assert not Execution.objects.filter(parent=firing).exists()


def test_a_development_schedule_needs_only_the_right_to_try(make_flow, operator):
    schedule = Schedule.objects.create(
        name="tryout", flow=make_flow("echo", ECHO), interval_seconds=60, owner=operator,
        mode="development",
    )
    permissions.sync_groups(apps, {"Developers": permissions.GROUPS["Developers"]})
    operator.groups.set([Group.objects.get(name="Developers")])  # may try, not run

    firing = _fired(schedule)

    assert firing.status == "ENDED_SUCCESS", firing.message
    assert Execution.objects.get(parent=firing).user_id == operator.pk


def test_a_schedule_a_flow_makes_is_owned_by_the_flows_user(make_flow, run_flow, operator):
    make_flow("echo", ECHO)
    make_flow("planner", """
        def handler(system, this):
            system.save_schedule({'name': 'planned', 'flow': 'echo', 'interval_seconds': 60})
    """)
    planner = run_flow("planner", user=operator)
    assert planner.status == "ENDED_SUCCESS", planner.message
    assert Schedule.objects.get(name="planned").owner == operator


def test_a_schedule_without_an_owner_fires_without_a_user(make_flow):
    schedule = Schedule.objects.create(name="loaded", flow=make_flow("echo", ECHO),
                                       interval_seconds=60)

    firing = _fired(schedule)

    assert firing.status == "ENDED_SUCCESS", firing.message
    assert Execution.objects.get(parent=firing).user_id is None


def test_a_schedule_made_through_the_api_is_owned_by_its_creator(api, admin, make_flow):
    flow = make_flow("echo", ECHO)

    made = api.post("/api/schedules/", {
        "name": "nightly", "flow": "echo", "interval_seconds": 60, "owner": "someone-else",
    }, format="json")

    assert made.status_code == 201, made.json()
    assert made.json()["owner"] == "root"  # read-only: the creator, whatever was sent
    assert Schedule.objects.get(name="nightly").owner == admin
    changed = api.patch("/api/schedules/nightly/", {"enabled": False}, format="json")
    assert changed.status_code == 200 and changed.json()["owner"] == "root"
    Schedule.objects.create(name="loaded", flow=flow, interval_seconds=60)
    assert api.get("/api/schedules/loaded/").json()["owner"] is None


def test_the_admin_owns_a_new_schedule_by_its_creator_and_shows_an_orphaned_one(
    admin, client, make_flow, operator
):
    flow = make_flow("echo", ECHO)
    client.force_login(admin)
    answer = client.post("/admin/executions/schedule/add/", {
        "name": "nightly", "flow": flow.pk, "input_value": "{}", "mode": "productive",
        "enabled": "on", "cron": "0 3 * * *", "timezone": "UTC", "overlap": "allow",
    })
    assert answer.status_code == 302, answer.content.decode()[:3000]
    assert Schedule.objects.get(name="nightly").owner == admin
    Schedule.objects.create(name="oper2s", flow=flow, interval_seconds=60, owner=operator)
    page = client.get("/admin/executions/schedule/").content.decode()
    assert "orphaned" not in page

    operator.groups.clear()
    page = client.get("/admin/executions/schedule/").content.decode()
    assert "orphaned: its owner &#x27;oper2&#x27; may no longer start productive executions" in page
    schedule = Schedule.objects.get(name="oper2s")
    page = client.get(f"/admin/executions/schedule/{schedule.pk}/change/").content.decode()
    assert "orphaned: its owner &#x27;oper2&#x27; may no longer start productive executions" in page
