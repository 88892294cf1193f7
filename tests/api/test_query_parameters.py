"""Query parameters the API cannot read are refused 400 naming them, never ignored."""

from __future__ import annotations

import pytest

from executions.models import Execution, Flow

pytestmark = pytest.mark.django_db

SCRIPT = "def handler(system, this):\n    return None\n"


@pytest.mark.parametrize("query, name", [
    ("offset=null", "offset"),
    ("offset=-1", "offset"),
    ("offset=1.5", "offset"),
    ("limit=0", "limit"),
    ("limit=abc", "limit"),
    ("limit=5&limit=6", "limit"),
    ("enabled=maybe", "enabled"),
    ("enabled=", "enabled"),
    ("name=a&name=b", "name"),
])
def test_an_unreadable_list_parameter_is_refused_naming_it(api, query, name):
    answer = api.get(f"/api/flows/?{query}")
    assert answer.status_code == 400, answer.json()
    assert list(answer.json()) == [name]


def test_typed_execution_filters_refuse_empty_and_repeated_values(api):
    assert api.get("/api/executions/?created_after=").json() == {
        "created_after": ["must not be empty (leave the parameter out instead)"]
    }
    assert api.get("/api/executions/?root=1&root=2").status_code == 400
    execution = Execution.objects.create(name="logged", queue="default")
    assert api.get(f"/api/executions/{execution.pk}/logs/?after=1&after=2").json() == {
        "after": ["give one value, not several"]
    }


def test_a_detail_route_answers_its_row_whatever_list_filters_the_query_names(api):
    # List filters narrow lists; one row read by its id is not narrowed by them (it was,
    # at the price of building the list's whole FilterSet on every read of one row).
    execution = Execution.objects.create(name="pending", queue="default")
    answer = api.get(f"/api/executions/{execution.pk}/?status=ENDED_ERROR&ordering=-name")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["id"] == execution.pk
    assert api.get("/api/executions/?status=ENDED_ERROR").json()["results"] == []
    assert api.get("/api/executions/?status=").status_code == 400  # lists still refuse


def test_a_large_limit_is_still_clamped_and_readable_values_work(api):
    Flow.objects.create(name="one", script=SCRIPT)
    answer = api.get("/api/flows/?limit=99999999999999999999&offset=0&enabled=true")
    assert answer.status_code == 200
    assert [f["name"] for f in answer.json()["results"]] == ["one"]


def test_a_name_with_spaces_around_it_is_refused_not_trimmed(api):
    answer = api.post("/api/settings/", {"name": " padded ", "value": 1}, format="json")
    assert answer.status_code == 400
    assert "name" in answer.json()


def test_the_token_endpoints_400_bodies_match_the_error_schema(client):
    missing = client.post("/api/auth/token/", {"username": ""}, content_type="application/json")
    assert missing.status_code == 400
    assert set(missing.json()) <= {"username", "password"}
    wrong = client.post("/api/auth/token/", {"username": "x", "password": "y"},
                        content_type="application/json")
    assert wrong.status_code == 400
    assert wrong.json() == {"non_field_errors": ["wrong username or password"]}


@pytest.mark.parametrize("path, body", [
    ("/api/settings/", {"name": 7, "value": 1}),
    ("/api/flows/", {"name": 1.5, "script": SCRIPT}),
    ("/api/executions/", {"type": "SCRIPT", "script": ["not", "text"]}),
])
def test_a_number_where_the_schema_says_string_is_refused_naming_the_field(api, path, body):
    answer = api.post(path, body, format="json")
    assert answer.status_code == 400
    field = next(k for k, v in body.items() if not isinstance(v, str) and k != "value")
    assert answer.json() == {field: ["must be a string"]}
