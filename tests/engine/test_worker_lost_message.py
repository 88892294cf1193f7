"""A flow whose process ends without answering ends ENDED_ERROR saying how, and nothing of
the worker goes with it (its flow host is a process of its own)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("os._exit(7)", "the flow's process exited with code 7 before it answered (os._exit or a crash)"),
        ("os._exit(0)", "the flow's process exited with code 0 before it answered (os._exit or a crash)"),
    ],
)
def test_a_flow_whose_process_ends_is_told_so_and_the_worker_serves_on(make_flow, api, call, message) -> None:
    make_flow("vanisher", f"import os\n\ndef handler(system, this):\n    {call}\n")
    make_flow("after", "def handler(system, this):\n    return {'ok': True}\n")

    body = api.post("/api/executions/", {"flow": "vanisher", "wait": 30}, format="json").json()

    assert body["status"] == "ENDED_ERROR"
    assert body["message"] == message
    after = api.post("/api/executions/", {"flow": "after", "wait": 30}, format="json").json()
    assert after["status"] == "ENDED_SUCCESS"
