"""Flows through `/api/flows/`: by name, with a compile check that names the line."""

from __future__ import annotations

import pytest

from executions.models import Flow

pytestmark = pytest.mark.django_db

SCRIPT = "def handler(system, this):\n    return this.success('hi')\n"


def test_a_flow_is_created_read_updated_and_deleted_by_name(api):
    created = api.post(
        "/api/flows/", {"name": "hello", "script": SCRIPT, "timeout": 5}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["revision"] == 1
    assert created.json()["enabled"] is True

    assert api.get("/api/flows/hello/").json()["script"] == SCRIPT
    changed = api.patch("/api/flows/hello/", {"description": "greets"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["revision"] == 2
    assert changed.json()["description"] == "greets"
    replaced = api.put(
        "/api/flows/hello/", {"name": "hello", "script": "  " + SCRIPT.strip() + "\n"},
        format="json",
    )
    assert replaced.status_code == 400  # an indented first line does not compile
    assert api.delete("/api/flows/hello/").status_code == 204
    assert not Flow.objects.exists()
    assert api.get("/api/flows/hello/").status_code == 404


def test_a_script_that_does_not_compile_is_refused_naming_the_line(api):
    answer = api.post(
        "/api/flows/",
        {"name": "broken", "script": "def handler(system, this):\n    return (\n"},
        format="json",
    )

    assert answer.status_code == 400
    assert "line 2" in answer.json()["script"][0]
    assert not Flow.objects.exists()


def test_a_script_without_a_handler_is_refused_like_a_syntax_error(api):
    answer = api.post(
        "/api/flows/", {"name": "nohandler", "script": "def handle(system, this):\n    pass\n"},
        format="json",
    )

    assert answer.status_code == 400
    assert "handler(system, this)" in answer.json()["script"][0]
    assert not Flow.objects.exists()
    api.post("/api/flows/", {"name": "kept", "script": SCRIPT}, format="json")
    changed = api.patch("/api/flows/kept/", {"script": "x = 1\n"}, format="json")
    assert changed.status_code == 400
    assert "script" in changed.json()
    assert Flow.objects.get(name="kept").script == SCRIPT


@pytest.mark.parametrize(
    "script",
    [
        "async def handler(system, this):\n    pass\n",
        "from flow_api import Port\nhandler = lambda system, this: None\n",
        "try:\n    from shared import handler\nexcept ImportError:\n"
        "    def handler(system, this):\n        pass\n",
    ],
)
def test_a_handler_bound_at_the_top_level_in_any_way_is_taken(api, script):
    answer = api.post("/api/flows/", {"name": "bound", "script": script}, format="json")
    assert answer.status_code == 201, answer.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"script": SCRIPT}, "name"),
        ({"name": "a/b", "script": SCRIPT}, "name"),
        ({"name": "x"}, "script"),
        ({"name": "x", "script": SCRIPT, "timeout": 0}, "timeout"),
        ({"name": "x", "script": SCRIPT, "enabled": "maybe"}, "enabled"),
    ],
)
def test_bad_flows_are_refused_naming_the_field(api, body, field):
    answer = api.post("/api/flows/", body, format="json")

    assert answer.status_code == 400
    assert field in answer.json()


def test_a_second_flow_of_the_same_name_is_refused_as_a_conflict(api):
    api.post("/api/flows/", {"name": "dup", "script": SCRIPT}, format="json")
    answer = api.post("/api/flows/", {"name": "dup", "script": SCRIPT}, format="json")
    assert answer.status_code == 409
    assert "already exists" in answer.json()["name"][0]


def test_the_list_is_paginated_filtered_and_ordered(api):
    for name in ("b-flow", "a-flow", "c-other"):
        Flow.objects.create(name=name, script=SCRIPT, enabled=name != "c-other")

    page = api.get("/api/flows/", {"limit": 2}).json()
    assert page["count"] == 3
    assert [f["name"] for f in page["results"]] == ["a-flow", "b-flow"]
    assert [f["name"] for f in api.get("/api/flows/", {"enabled": "false"}).json()["results"]] == [
        "c-other"
    ]
    assert [f["name"] for f in api.get("/api/flows/", {"name__icontains": "flow",
                                                       "ordering": "-name"}).json()["results"]] == [
        "b-flow", "a-flow"
    ]
