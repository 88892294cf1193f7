"""Bounds a user can see through the API: page size, output size, and a flow's print()."""

from __future__ import annotations

import pytest
from django.conf import settings

from executions.models import Execution, ExecutionLog, Flow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def _start(api, flow: str) -> dict:  # type: ignore[no-untyped-def]
    answer = api.post("/api/executions/", {"flow": flow, "wait": 60}, format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()


def _log(execution_id: int) -> list[tuple[str, str]]:
    entries = ExecutionLog.objects.filter(execution_id=execution_id).order_by("id")
    return list(entries.values_list("level", "text"))


def test_a_page_holds_at_most_1000_rows_whatever_limit_asks_for(api) -> None:
    Flow.objects.bulk_create(Flow(name=f"f{n:04}", script="") for n in range(1005))
    # Ended: rows left PENDING would each be cancelled after the test (12 s for a thousand).
    Execution.objects.bulk_create(
        Execution(name=f"e{n}", type="FLOW", status="ENDED_SUCCESS") for n in range(1005)
    )

    for path in ("/api/executions/", "/api/flows/"):
        page = api.get(path, {"limit": 1_000_000_000}).json()
        assert page["count"] == 1005
        assert len(page["results"]) == 1000
        assert "limit=1000" in page["next"]
    assert len(api.get("/api/executions/", {"limit": 7}).json()["results"]) == 7
    assert len(api.get("/api/executions/").json()["results"]) == 50


def test_the_schema_documents_the_ceiling_of_limit(api) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    params = schema["paths"]["/api/executions/"]["get"]["parameters"]
    limit = next(p for p in params if p["name"] == "limit")
    assert "at most 1000" in limit["description"]


def test_returning_outputs_larger_than_a_request_body_ends_in_error_naming_the_limit(
    api, make_flow
) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    make_flow("hoarder", f"def handler(system, this):\n    return {{'blob': 'x' * {limit}}}\n")

    body = _start(api, "hoarder")

    assert body["status"] == "ENDED_ERROR"
    assert f"over the limit of {limit} bytes (AUTOMATION_MAX_BODY_BYTES" in body["message"]
    assert body["output_value"] == {}


def test_saving_outputs_larger_than_a_request_body_ends_in_error_naming_the_limit(
    api, make_flow
) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    make_flow("saver", f"""
def handler(system, this):
    this.set_output('small', 1)
    this.set_output('blob', 'x' * {limit})
""")

    body = _start(api, "saver")

    assert body["status"] == "ENDED_ERROR"
    assert body["message"].startswith("FlowApiError: output_value is ")
    assert f"over the limit of {limit} bytes" in body["message"]
    assert "(line 4 of <flow saver>)" in body["message"]
    assert body["output_value"] == {"small": 1}


def test_print_and_stderr_of_a_flow_go_into_its_execution_log(api, make_flow) -> None:
    make_flow("printer", """
import sys

print('loaded')

def handler(system, this):
    print('hello', 'world')
    this.log('between')
    print('two\\nlines')
    sys.stderr.write('to stderr\\n')
    print('no end', end='')
""")

    body = _start(api, "printer")

    assert body["status"] == "ENDED_SUCCESS"
    assert _log(body["id"]) == [
        ("INFO", "loaded"),
        ("INFO", "hello world"),
        ("INFO", "between"),
        ("INFO", "two"),  # one entry per line
        ("INFO", "lines"),
        ("WARNING", "to stderr"),
        ("INFO", "no end"),
    ]
    entries = api.get(f"/api/executions/{body['id']}/logs/").json()
    texts = [e["text"] for e in entries["results"]]
    assert "hello world" in texts


def test_printing_100_mb_is_capped_like_this_log_and_ends_in_error(api, make_flow) -> None:
    make_flow("shouter", """
def handler(system, this):
    line = 'y' * (1024 * 1024)
    for _ in range(100):
        print(line)
""")
    entry_max = settings.AUTOMATION["LOG_ENTRY_MAX_BYTES"]
    total_max = settings.AUTOMATION["LOG_MAX_BYTES"]

    body = _start(api, "shouter")

    assert body["status"] == "ENDED_ERROR"
    assert "the log of this execution passed its limit" in body["message"]
    assert "(line 5 of <flow shouter>)" in body["message"]
    texts = [text for _level, text in _log(body["id"])]
    assert sum(len(t) for t in texts) <= total_max + entry_max
    assert "[log entry truncated: 1048576 bytes" in texts[0]


def test_the_worker_prints_again_to_its_own_output_after_a_flow(api, make_flow, worker) -> None:
    make_flow("quiet", "def handler(system, this):\n    print('inside')\n")
    first = _start(api, "quiet")
    second = _start(api, "quiet")
    assert [t for _l, t in _log(first["id"])] == ["inside"]
    assert [t for _l, t in _log(second["id"])] == ["inside"]
    assert "inside" not in worker.log()
