"""Settings through `/api/settings/`: any JSON value, by name."""

from __future__ import annotations

import pytest

from executions.models import Setting

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", [{"url": "http://x", "retries": 3}, [1, 2], "text", 4.5, None])
def test_a_setting_holds_any_json_value(api, value):
    created = api.post("/api/settings/", {"name": "s", "value": value}, format="json")

    assert created.status_code == 201, created.json()
    assert api.get("/api/settings/s/").json()["value"] == value
    assert Setting.objects.get(name="s").value == value


def test_a_setting_is_updated_and_deleted_by_name(api):
    api.post("/api/settings/", {"name": "limits", "value": {"max": 1}}, format="json")

    changed = api.patch("/api/settings/limits/", {"value": {"max": 2}}, format="json")

    assert changed.status_code == 200
    assert Setting.objects.get(name="limits").value == {"max": 2}
    assert [s["name"] for s in api.get("/api/settings/").json()["results"]] == ["limits"]
    assert api.delete("/api/settings/limits/").status_code == 204
    assert api.get("/api/settings/limits/").status_code == 404


def test_bad_settings_are_refused_naming_the_field(api):
    api.post("/api/settings/", {"name": "one", "value": 1}, format="json")

    assert "name" in api.post("/api/settings/", {"name": "one"}, format="json").json()
    assert "name" in api.post("/api/settings/", {"value": 1}, format="json").json()
    assert "name" in api.post("/api/settings/", {"name": "a/b"}, format="json").json()
    malformed = api.post("/api/settings/", "{nope", content_type="application/json")
    assert malformed.status_code == 400 and "detail" in malformed.json()


def test_a_form_body_is_refused_415_and_changes_nothing(api):
    """The API reads JSON only: a form or multipart body that parses to nothing would
    otherwise answer 200 having changed nothing."""
    api.post("/api/settings/", {"name": "kept", "value": {"a": 1}}, format="json")

    form = api.patch("/api/settings/kept/", {"value": "2"}, format="multipart")

    assert form.status_code == 415, form.content
    assert "application/json" in form.json()["detail"] or "Unsupported media type" in form.json()["detail"]
    assert Setting.objects.get(name="kept").value == {"a": 1}
