"""The OpenAPI schema: generated without warnings, valid, served with Swagger UI, and a
bounded schemathesis run over every operation finds no 500 answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

OURS = ("/api/auth/", "/api/flows/", "/api/executions/", "/api/settings/", "/api/webhooks/")


def _schema() -> dict[str, Any]:
    return APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    validate_schema(_schema())


def test_every_endpoint_is_in_the_schema_and_documented():
    schema = _schema()
    paths = schema["paths"]
    for path in (
        "/api/auth/token/", "/api/flows/", "/api/flows/{name}/", "/api/executions/",
        "/api/executions/{id}/", "/api/executions/{id}/logs/", "/api/executions/{id}/children/",
        "/api/executions/{id}/cancel/", "/api/settings/{name}/", "/api/webhooks/{name}/",
        "/api/webhooks/{name}/rotate-key/", "/api/webhooks/{name}/call",
        "/api/webhooks/{name}/call/{subpath}",
    ):
        assert path in paths, path
    for path, operations in paths.items():
        if not path.startswith(OURS):
            continue
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("description") or operation.get("summary"), (path, method)
    components = schema["components"]["schemas"]
    for name in ("Flow", "Execution", "ExecutionStartRequest", "Setting", "Webhook", "WebhookWithKey"):
        assert components[name]["properties"], name
    start = components["ExecutionStartRequest"]["properties"]
    assert {"type", "flow", "script", "input_value", "mode", "wait"} <= set(start)
    assert all(spec.get("description") for spec in start.values()), start
    assert schema["components"]["securitySchemes"]


def test_every_operation_documents_its_error_answers_with_one_body():
    schema = _schema()
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            for code in ("400", "403", "404", "413"):
                assert code in responses, (path, method, code)
            if "401" in responses and path.startswith(OURS):
                assert responses["401"]["content"]["application/json"]["schema"] == error
    token = schema["paths"]["/api/auth/token/"]["post"]["responses"]
    assert token["400"]["content"]["application/json"]["schema"] == error
    assert "429" in token and "401" not in token
    assert "401" in schema["paths"]["/api/flows/"]["get"]["responses"]


def test_a_webhooks_flow_is_nullable_in_answers_and_required_in_requests():
    components = _schema()["components"]["schemas"]
    for name in ("Webhook", "Schedule"):
        assert components[name]["properties"]["flow"]["nullable"] is True
        assert "nullable" not in components[f"{name}Request"]["properties"]["flow"]
        assert "flow" in components[f"{name}Request"]["required"]
    assert components["Execution"]["properties"]["flow"]["nullable"] is True


def test_pagination_parameters_say_their_bounds():
    parameters = {p["name"]: p["schema"] for p in _schema()["paths"]["/api/flows/"]["get"]["parameters"]}
    assert parameters["limit"]["minimum"] == 1
    assert parameters["offset"]["minimum"] == 0


def test_swagger_ui_is_served_at_api_docs():
    answer = APIClient().get("/api/docs/")
    assert answer.status_code == 200
    assert b"swagger" in answer.content.lower()


# --- schemathesis ------------------------------------------------------------------------
@pytest.fixture
def requests_share_the_test_transaction() -> Iterator[None]:
    """Requests go through Django's WSGI handler in this thread, as the test client does:
    keep the test's connection (and its transaction) across them."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def short_waits(settings: Any) -> None:
    """Bounded: no call may wait long for an execution (none runs: there is no worker)."""
    settings.AUTOMATION = {
        **settings.AUTOMATION, "MAX_API_WAIT_SECONDS": 0.2, "WEBHOOK_WAIT_SECONDS": 0.2
    }


@pytest.fixture
def token(django_user_model: Any) -> str:
    from executions.api.auth import issue_token

    user = django_user_model.objects.create_superuser("fuzzer", password=None)
    return str(issue_token(user)["token"])


def _load(*, coverage: bool) -> Any:
    # Loaded at collection (schemathesis' lazy fixture loader does not run on pytest 9): the
    # schema view needs no database.
    config = schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": coverage}}})
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=config)


#: Every operation, random cases (examples and fuzzing phases): the quick, bounded run.
every_operation = _load(coverage=False)
#: This package's operations with schemathesis' coverage phase too (edge values, odd
#: characters in paths, unexpected methods): thousands of cases, so marked slow.
ours_thoroughly = _load(coverage=True).include(
    path_regex=r"^/api/(auth|flows|executions|settings|webhooks)/"
)


def _call_and_check(case: Any, token: str) -> None:
    response = case.call(headers={"Authorization": f"Token {token}"})

    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
    if response.status_code >= 400 and response.text:
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type")
        assert not case.path.startswith(OURS) or "json" in str(content_type), (
            case.method, case.formatted_path, content_type, response.text[:200]
        )


@every_operation.parametrize()
@hypothesis_settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure is reproducible
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.usefixtures("requests_share_the_test_transaction", "short_waits")
def test_no_operation_answers_500(case: Any, token: str) -> None:
    _call_and_check(case, token)


@pytest.mark.slow
@ours_thoroughly.parametrize()
@hypothesis_settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@pytest.mark.usefixtures("requests_share_the_test_transaction", "short_waits")
def test_no_operation_answers_500_even_to_edge_cases(case: Any, token: str) -> None:
    _call_and_check(case, token)
