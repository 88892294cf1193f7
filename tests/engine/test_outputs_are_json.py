"""Outputs are JSON or an error naming what is not: never dropped, never an SQL message."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _run(api, make_flow, body: str, name: str = "outputs") -> dict:  # type: ignore[no-untyped-def]
    make_flow(name, "import math\n\ndef handler(system, this):\n" + body)
    answer = api.post("/api/executions/", {"flow": name, "wait": 30}, format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()


def _no_engine_or_sql_text(message: str) -> None:
    for leak in ("engine error", "DataError", "LINE 1", "syntax for type json"):
        assert leak not in message


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("{1, 2}", "the handler returned a set; it may return a dict of outputs"),
        ("b'raw'", "the handler returned a bytes; it may return a dict of outputs"),
        ("[1, 2]", "the handler returned a list; it may return a dict of outputs"),
        ("'done'", "the handler returned a str; it may return a dict of outputs"),
        ("42", "the handler returned an int; it may return a dict of outputs"),
        ("{'x': object()}", "output_value['x'] is an object, which JSON cannot hold"),
        ("{'x': {'a'}}", "output_value['x'] is a set, which JSON cannot hold"),
        ("{'x': [1, b'b']}", "output_value['x'][1] is a bytes, which JSON cannot hold"),
        ("{'x': {'y': math.nan}}", "output_value['x']['y'] is nan, which JSON cannot hold"),
        ("{'x': math.inf}", "output_value['x'] is inf, which JSON cannot hold"),
        (r"{'x': 'a\x00b'}", r"output_value['x'] contains a NUL character (\x00)"),
        (r"{'x': 'a\ud800'}", r"output_value['x'] contains a lone surrogate ('\ud800' at position 1)"),
        (r"{'k\x00': 1}", r"a key of output_value contains a NUL character (\x00)"),
    ],
)
def test_a_handler_returning_what_json_cannot_hold_ends_in_error_naming_it(
    make_flow, api, returned, message
) -> None:
    body = _run(api, make_flow, f"    this.set_output('kept', 1)\n    return {returned}\n")

    assert body["status"] == "ENDED_ERROR"
    assert message in body["message"]
    _no_engine_or_sql_text(body["message"])
    assert body["output_value"] == {"kept": 1}  # what was saved before stays; nothing more


def test_a_handler_returning_none_or_json_ends_in_success(make_flow, api) -> None:
    assert _run(api, make_flow, "    return None\n")["status"] == "ENDED_SUCCESS"
    body = _run(api, make_flow, "    return {'a': [1, 2.5, (3, 'x')], 'b': None, 7: True}\n", "json")
    assert body["status"] == "ENDED_SUCCESS"
    assert body["output_value"] == {"a": [1, 2.5, [3, "x"]], "b": None, "7": True}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("this.save(output_value={'x': {'y': {1}}})", "output_value['x']['y'] is a set"),
        ("this.set_output('x', math.nan)", "output_value['x'] is nan"),
        (r"this.set_output(x=['ok', 'a\udfff'])", "output_value['x'][1] contains a lone surrogate"),
    ],
)
def test_saving_outputs_json_cannot_hold_ends_in_error_naming_the_key_path(
    make_flow, api, call, message
) -> None:
    body = _run(api, make_flow, f"    {call}\n")

    assert body["status"] == "ENDED_ERROR"
    assert body["message"].startswith("FlowApiError: ")
    assert message in body["message"]
    assert "(line 4 of <flow outputs>)" in body["message"]
    _no_engine_or_sql_text(body["message"])
    assert body["output_value"] == {}
