""""worker lost" says why, without Celery's job counter (which reads like an execution id)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.mark.parametrize(
    ("call", "cause"),
    [
        ("os._exit(7)", "(Worker exited prematurely: exitcode 7)"),
        ("os.kill(os.getpid(), signal.SIGKILL)", "(Worker exited prematurely: signal 9 (SIGKILL))"),
    ],
)
def test_a_lost_worker_is_named_without_celerys_job_counter(make_flow, api, call, cause) -> None:
    make_flow("vanisher", f"import os\nimport signal\n\ndef handler(system, this):\n    {call}\n")

    body = api.post("/api/executions/", {"flow": "vanisher", "wait": 30}, format="json").json()

    assert body["status"] == "ENDED_ERROR"
    assert body["message"] == (
        f"worker lost: the process running it exited {cause}; a flow calling os._exit() does this"
    )
    assert "Job" not in body["message"]
