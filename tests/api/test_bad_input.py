"""Bad input to the API and the webhook call: a 4xx JSON answer naming the problem, never 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from executions.models import Execution, Flow

pytestmark = pytest.mark.django_db(transaction=True)

SQLISH = "x'; DROP TABLE executions_execution; --"
DEEP = ("[" * 10_000 + "]" * 10_000).encode()
DEEP_OBJECT = ('{"a":' * 10_000 + "1" + "}" * 10_000).encode()
NOT_UTF8 = b'{"flow": "\xff\xfe\xfa"}'


@pytest.fixture
def api(django_user_model) -> APIClient:
    admin = django_user_model.objects.create_superuser("root", password="p" * 12)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(admin)
    return client


@pytest.fixture
def flow(make_flow) -> Flow:
    return make_flow("fine", "def handler(system, this):\n    pass\n")


def _raw(api: APIClient, path: str, body: bytes, content_type: str = "application/json") -> Any:
    return api.generic("POST", path, body, content_type=content_type)  # type: ignore[arg-type]  # bytes are sent as they are


def _json(api: APIClient, path: str, body: Any) -> Any:
    return _raw(api, path, json.dumps(body).encode())


def _refused(answer: Any, status: int, *words: str) -> dict[str, Any]:
    """The answer is `status`, JSON, and its text names the problem (each of `words`)."""
    text = answer.content.decode("utf-8", "replace")
    print(f"  -> {answer.status_code} {text[:160]}")
    assert answer.status_code == status, text[:500]
    assert answer["Content-Type"].startswith("application/json"), answer["Content-Type"]
    body = answer.json()
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in {text[:300]}"
    return body


BODIES = {
    # name: (body bytes, status, words the answer names)
    "oversized": (b'{"flow": "' + b"x" * 3_000_000 + b'"}', 413, ("too large",)),
    "deep array": (DEEP, 400, ("nest",)),
    "deep object": (DEEP_OBJECT, 400, ("nest",)),
    "not UTF-8": (NOT_UTF8, 400, ("utf-8",)),
    "not JSON": (b"{flow: fine", 400, ("json",)),
}


@pytest.mark.parametrize("path", ["/api/executions/", "/api/flows/", "/api/schedules/"])
@pytest.mark.parametrize("case", list(BODIES))
def test_a_body_that_cannot_be_read_is_refused_with_400_or_413(api, path, case) -> None:
    body, status, words = BODIES[case]
    print(f"POST {path} with a {case} body ({len(body)} bytes)")
    _refused(_raw(api, path, body), status, *words)


@pytest.mark.parametrize("case", list(BODIES))
def test_a_webhook_call_with_a_body_that_cannot_be_read_is_refused(api, flow, case) -> None:
    created = _json(api, "/api/webhooks/", {"name": "orders", "flow": "fine", "enabled": True})
    key = created.json()["key"]
    body, status, words = BODIES[case]
    if case == "oversized":  # the webhook's own, smaller limit
        words = ("larger",)
    print(f"webhook call with a {case} body ({len(body)} bytes)")
    answer = _raw(api, f"/api/webhooks/orders/call?key={key}", body)
    _refused(answer, status, *words)
    assert Execution.objects.count() == 0


def test_starting_with_wrong_types_names_each_field(api, flow) -> None:
    print("POST /api/executions/ with wrong types")
    body = _refused(
        _json(api, "/api/executions/", {"flow": "fine", "input_value": "text", "wait": "soon"}),
        400, "input_value", "wait",
    )
    assert set(body) >= {"input_value", "wait"}
    _refused(_json(api, "/api/executions/", {"flow": ["fine"]}), 400, "flow")
    _refused(_json(api, "/api/executions/", [1, 2, 3]), 400)
    _refused(_json(api, "/api/executions/", "just a string"), 400)
    assert Execution.objects.count() == 0


def test_starting_an_unknown_or_sql_looking_flow_name_is_answered_not_found(api, flow) -> None:
    for name in ("nope", SQLISH, "a\u0000b", "x" * 10_000):
        print(f"POST /api/executions/ flow={name[:40]!r}")
        answer = _json(api, "/api/executions/", {"flow": name})
        assert answer.status_code in (400, 404), answer.content[:300]
        _refused(answer, answer.status_code, "flow")
    assert Execution.objects.count() == 0
    assert Flow.objects.filter(name="fine").exists()  # the table is still there


def test_a_sql_looking_name_is_stored_verbatim_as_plain_data(api) -> None:
    print(f"POST /api/flows/ name={SQLISH!r}")
    created = _json(api, "/api/flows/", {"name": SQLISH, "script": "def handler(s, t): pass"})
    print(f"  -> {created.status_code}")
    assert created.status_code == 201
    assert api.get("/api/flows/", {"name": SQLISH}).json()["results"][0]["name"] == SQLISH
    assert Execution.objects.count() == 0  # the table it names is still there


def test_flows_with_nul_overlong_or_wrongly_typed_names_are_refused_naming_the_name(api) -> None:
    for name in ("a\u0000b", "x" * 10_000, ["a"], {"a": 1}, None, "a/b"):
        print(f"POST /api/flows/ name={str(name)[:40]!r}")
        _refused(_json(api, "/api/flows/", {"name": name, "script": "def handler(s, t): pass"}), 400, "name")
    _refused(_json(api, "/api/flows/", {"name": "ok", "script": "def handler(:"}), 400, "script")
    _refused(_json(api, "/api/flows/", {"name": "ok", "script": 123, "timeout": "long"}), 400, "timeout")
    assert Flow.objects.count() == 0
    print("  unknown flow:")
    assert api.get(f"/api/flows/{SQLISH}/").status_code == 404


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("cron", "61 * * * *", ("cron",)),
        ("cron", "not a cron", ("cron",)),
        ("cron", "* * * * * * * *", ("cron",)),
        ("timezone", "Mars/Olympus_Mons", ("timezone",)),
        ("timezone", "../../etc/passwd", ("timezone",)),
        ("timezone", "Europe/Berlin\u0000", ("timezone",)),
        ("interval_seconds", -5, ("interval_seconds",)),
        ("interval_seconds", "often", ("interval_seconds",)),
        ("flow", SQLISH, ("flow",)),
        ("name", "x" * 1000, ("name",)),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(api, flow, field, value, words) -> None:
    body = {"name": "nightly", "flow": "fine", "cron": "0 3 * * *", "timezone": "UTC"}
    if field == "interval_seconds":
        body.pop("cron")
    body[field] = value
    print(f"POST /api/schedules/ {field}={value!r}")
    _refused(_json(api, "/api/schedules/", body), 400, *words)


def test_a_webhook_call_to_an_unknown_or_sql_looking_name_is_answered_404(api) -> None:
    for name in ("nope", "x';DROP TABLE executions_webhook;--"):
        print(f"webhook call to {name!r}")
        _refused(_raw(api, f"/api/webhooks/{name}/call?key=k", b"{}"), 404)
