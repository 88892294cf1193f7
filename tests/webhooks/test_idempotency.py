"""`Idempotency-Key` on webhook calls: a retry of the same call (per webhook) answers about
the first execution instead of starting another."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from executions.models import Execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]

ECHO = """
def handler(system, this):
    this.save(output_value={'got': this.get('input_value')})
"""
SLEEPER = """
import time

def handler(system, this):
    time.sleep(60)
"""


def _webhook(api: APIClient, name: str = "orders", flow: str = "hooked") -> tuple[str, str]:
    answer = api.post(
        "/api/webhooks/", {"name": name, "flow": flow, "enabled": True}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    return f"/api/webhooks/{name}/call", answer.json()["key"]


def _call(caller: APIClient, url: str, key: str, idempotency_key: str, body: Any = None,
          query: str = "") -> Any:
    return caller.post(
        f"{url}?key={key}{query}", body, format="json",
        headers={"Idempotency-Key": idempotency_key},
    )


def test_a_retried_synchronous_call_answers_with_the_first_execution(api, caller, make_flow):
    make_flow("hooked", ECHO)
    url, key = _webhook(api)

    first = _call(caller, url, key, "delivery-1", {"order": 7})
    again = _call(caller, url, key, "delivery-1", {"order": 7})

    assert first.status_code == 200, first.content
    assert "Idempotent-Replayed" not in first
    assert again.status_code == 200, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["output_value"]["got"]["json"] == {"order": 7}
    assert Execution.objects.count() == 1


def test_a_retried_async_call_answers_202_with_the_first_execution(api, caller, make_flow):
    make_flow("hooked", SLEEPER)
    url, key = _webhook(api)

    first = _call(caller, url, key, "delivery-1", query="&async=1")
    again = _call(caller, url, key, "delivery-1", query="&async=1")

    assert first.status_code == 202
    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Execution.objects.count() == 1


def test_the_key_in_the_body_or_the_query_is_not_part_of_the_request(api, caller, make_flow):
    make_flow("hooked", ECHO)
    url, key = _webhook(api)

    first = _call(caller, url, key, "d", {"order": 7})
    again = caller.post(url, {"order": 7, "key": key}, format="json", headers={"Idempotency-Key": "d"})

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_the_same_key_with_a_different_body_answers_422_naming_the_header(api, caller, make_flow):
    make_flow("hooked", ECHO)
    url, key = _webhook(api)
    assert _call(caller, url, key, "d", {"order": 7}).status_code == 200

    answer = _call(caller, url, key, "d", {"order": 8})

    assert answer.status_code == 422
    assert "different request" in answer.json()["Idempotency-Key"][0]
    assert Execution.objects.count() == 1


def test_the_same_key_with_a_different_query_answers_422(api, caller, make_flow):
    make_flow("hooked", ECHO)
    url, key = _webhook(api)
    assert _call(caller, url, key, "d", query="&page=1").status_code == 200

    assert _call(caller, url, key, "d", query="&page=2").status_code == 422


def test_the_same_key_on_another_webhook_starts_its_own_execution(api, caller, make_flow):
    make_flow("hooked", ECHO)
    url, key = _webhook(api)
    other_url, other_key = _webhook(api, "invoices")

    first = _call(caller, url, key, "d", {"n": 1})
    other = _call(caller, other_url, other_key, "d", {"n": 1})

    assert (first.status_code, other.status_code) == (200, 200)
    assert "Idempotent-Replayed" not in other
    assert first.json()["id"] != other.json()["id"]


def test_an_unusable_key_answers_400_naming_the_header(api, caller, make_flow):
    make_flow("hooked", ECHO)
    url, key = _webhook(api)

    answer = _call(caller, url, key, "x" * 256)

    assert answer.status_code == 400
    assert "255" in answer.json()["Idempotency-Key"][0]
    assert Execution.objects.count() == 0


def test_a_wrong_webhook_key_is_refused_before_the_idempotency_key_is_looked_at(
    api, caller, make_flow
):
    make_flow("hooked", ECHO)
    url, _ = _webhook(api)

    assert _call(caller, url, "wrong", "x" * 256).status_code == 403
