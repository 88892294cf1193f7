"""Retries with backoff: one execution id across its attempts, parked between them."""

from __future__ import annotations

import pytest

from executions import engine
from executions.models import Execution, ExecutionLog, Flow

from ..workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

QUICK = {"max_attempts": 3, "initial_delay": 0.2, "max_delay": 1, "multiplier": 2}

# Fails until its `succeed_on`-th attempt (counted in a setting), starting a child each time.
FLAKY = """
def handler(system, this, inputs):
    counter = system.setting(inputs['counter'])
    attempt = (counter.get('value') or 0) + 1
    counter.save(attempt)
    this.flow('marker', attempt=attempt)
    if attempt < inputs['succeed_on']:
        raise ConnectionError(f'down on attempt {attempt}')
    if inputs.get('value_error'):
        raise ValueError('not a connection problem')
    return {'attempt': attempt}
"""
MARKER = "def handler(system, this, inputs):\n    return {'seen': inputs['attempt']}\n"


@pytest.fixture
def flaky(make_flow):
    make_flow("marker", MARKER)
    return make_flow("flaky", FLAKY, retry_policy=QUICK)


def _run(inputs, timeout=30, **kwargs) -> Execution:
    started = engine.start_execution(flow="flaky", input_value=inputs, **kwargs)
    return engine.wait_for([started.pk], timeout=timeout)[0]


def test_a_flow_failing_twice_succeeds_on_its_third_attempt_under_one_id(flaky, api):
    ended = _run({"counter": "c1", "succeed_on": 3})

    assert ended.status == "ENDED_SUCCESS", ended.message
    body = api.get(f"/api/executions/{ended.pk}/").json()
    assert body["attempt"] == 3
    assert [a["attempt"] for a in body["previous_attempts"]] == [1, 2]
    assert body["previous_attempts"][0]["status_message"].startswith("ConnectionError: down on attempt 1")
    assert all(a["started_at"] and a["ended_at"] for a in body["previous_attempts"])
    assert body["output_value"] == {"attempt": 3}  # the last attempt's outputs only
    children = Execution.objects.filter(parent=ended).order_by("pk")
    assert [c.output_value["seen"] for c in children] == [1, 2, 3]  # failed attempts' stay visible
    logs = list(ExecutionLog.objects.filter(execution=ended).values_list("text", flat=True))
    assert any(t.startswith("attempt 1 of 3 failed: ConnectionError") for t in logs)
    assert any(t.startswith("attempt 3 of 3 starts") for t in logs)


def test_retries_exhausted_end_in_the_last_attempt_s_error(flaky):
    ended = _run({"counter": "c2", "succeed_on": 99})

    assert ended.status == "ENDED_ERROR"
    assert ended.message.startswith("ConnectionError: down on attempt 3")
    assert ended.attempt == 3 and len(ended.previous_attempts) == 2


def test_retry_on_retries_only_the_errors_it_names(flaky):
    Flow.objects.filter(name="flaky").update(retry_policy={**QUICK, "retry_on": ["OSError"]})
    retried = _run({"counter": "c3", "succeed_on": 2})  # ConnectionError is an OSError
    assert retried.status == "ENDED_SUCCESS" and retried.attempt == 2

    Flow.objects.filter(name="flaky").update(retry_policy={**QUICK, "retry_on": ["TimeoutError"]})
    not_retried = _run({"counter": "c4", "succeed_on": 2})
    assert not_retried.status == "ENDED_ERROR" and not_retried.attempt == 1
    assert not_retried.previous_attempts == []


def test_between_attempts_it_is_parked_and_says_when_the_next_starts(make_flow, api):
    make_flow("marker", MARKER)
    make_flow("flaky", FLAKY, retry_policy={"max_attempts": 2, "initial_delay": 3})
    started = engine.start_execution(flow="flaky", input_value={"counter": "c5", "succeed_on": 2})

    waiting = wait_until(lambda: Execution.objects.filter(pk=started.pk, parked=True).first(), 15)
    assert waiting.status == "WAITING"
    reason = api.get(f"/api/executions/{started.pk}/").json()["waiting_reason"]
    assert reason.startswith("attempt 1 failed; attempt 2 of 2 starts at ")
    ended = engine.wait_for([started.pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS" and ended.attempt == 2


def test_a_waiting_parent_and_an_api_wait_see_only_the_last_attempt(flaky, make_flow, api):
    make_flow("parent", """
        def handler(system, this):
            child = this.flow('flaky', counter='c6', succeed_on=2)
            return {'child': child.get('output_value'), 'status': child.get('status')}
    """)
    parent = engine.wait_for([engine.start_execution(flow="parent").pk], timeout=30)[0]
    assert parent.status == "ENDED_SUCCESS", parent.message
    assert parent.output_value == {"child": {"attempt": 2}, "status": "ENDED_SUCCESS"}

    body = api.post("/api/executions/", {
        "flow": "flaky", "input_value": {"counter": "c7", "succeed_on": 2}, "wait": 30,
    }, format="json").json()
    assert body["status"] == "ENDED_SUCCESS" and body["attempt"] == 2


def test_a_call_s_retry_policy_overrides_the_flow_s_and_a_bad_one_names_the_field(flaky, make_flow):
    Flow.objects.filter(name="flaky").update(retry_policy={})
    make_flow("caller", """
        def handler(system, this, inputs):
            child = this.flow('flaky', counter=inputs['counter'], succeed_on=2,
                              retry_policy=inputs['policy'])
            return {'attempt': child.get('output_value')['attempt']}
    """)
    good = engine.start_execution(flow="caller", input_value={
        "counter": "c8", "policy": {"max_attempts": 2, "initial_delay": 0.1}})
    bad = engine.start_execution(flow="caller", input_value={
        "counter": "c9", "policy": {"max_attempts": 0}})
    good, bad = engine.wait_for([good.pk, bad.pk], timeout=30)
    assert good.status == "ENDED_SUCCESS" and good.output_value == {"attempt": 2}
    assert bad.status == "ENDED_ERROR"
    assert "retry_policy" in bad.message and "max_attempts" in bad.message


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ({"max_attempts": 0}, "retry_policy.max_attempts"),
        ({"tries": 3}, "unknown key(s) tries"),
        ({"initial_delay": 10, "max_delay": 1}, "max_delay"),
        ({"retry_on": "ConnectionError"}, "retry_on"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_policy_is_refused_with_400_naming_the_field(flaky, api, policy, words):
    answer = api.patch("/api/flows/flaky/", {"retry_policy": policy}, format="json")
    assert answer.status_code == 400
    assert words in " ".join(answer.json()["retry_policy"])


def test_a_timeout_is_retried_when_the_policy_retries_timeouts(make_flow):
    make_flow("slow-then-quick", """
        import time

        def handler(system, this):
            counter = system.setting('slow-count')
            attempt = (counter.get('value') or 0) + 1
            counter.save(attempt)
            if attempt == 1:
                time.sleep(30)
            return {'attempt': attempt}
    """, timeout=1.5, retry_policy={"max_attempts": 2, "initial_delay": 0.2, "retry_on": ["Timeout"]})
    ended = engine.wait_for([engine.start_execution(flow="slow-then-quick").pk], timeout=30)[0]
    assert ended.status == "ENDED_SUCCESS" and ended.output_value == {"attempt": 2}
    assert ended.previous_attempts[0]["status_message"] == "timed out after 1.5 s"
