"""`Idempotency-Key` on `POST /api/executions/`: a retry returns the first execution instead
of starting another, per user, for AUTOMATION_IDEMPOTENCY_SECONDS, and under concurrency."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from executions.engine.retention import prune_idempotency_keys
from executions.models import Execution, IdempotencyKey

from ..web_server import running_web

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]

GREETER = """
def handler(system, this):
    name = this.get('input_value').get('name', 'world')
    return this.success(f'hello {name}')
"""
SLEEPER = """
import time

def handler(system, this):
    time.sleep(60)
"""


def _start(api: APIClient, key: str | None, **body: Any) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.post("/api/executions/", body, format="json", headers=headers)


def test_a_retry_with_the_same_key_answers_200_with_the_first_execution(make_flow, api):
    make_flow("greeter", GREETER)

    first = _start(api, "order-7", flow="greeter", input_value={"name": "Ada"}, wait=30)
    again = _start(api, "order-7", flow="greeter", input_value={"name": "Ada"}, wait=30)

    assert first.status_code == 201, first.json()
    assert "Idempotent-Replayed" not in first
    assert again.status_code == 200, again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "ENDED_SUCCESS"
    assert again.json()["message"] == "hello Ada"
    assert again["Location"] == first["Location"]
    assert Execution.objects.count() == 1


def test_a_replay_shows_the_execution_as_it_is_now(make_flow, api):
    make_flow("sleeper", SLEEPER)
    first = _start(api, "k", flow="sleeper")
    assert first.status_code == 201
    assert first.json()["status"] in ("PENDING", "RUNNING")
    pk = first.json()["id"]
    assert api.post(f"/api/executions/{pk}/cancel/").status_code == 200

    again = _start(api, "k", flow="sleeper")

    assert again.status_code == 200
    assert again.json()["id"] == pk
    assert again.json()["status"] == "ENDED_CANCELLED"


def test_the_same_key_with_a_different_body_answers_422_naming_the_header(make_flow, api):
    make_flow("greeter", GREETER)
    assert _start(api, "k", flow="greeter", input_value={"name": "Ada"}).status_code == 201

    answer = _start(api, "k", flow="greeter", input_value={"name": "Bob"})

    assert answer.status_code == 422
    assert list(answer.json()) == ["Idempotency-Key"]
    assert "different request" in answer.json()["Idempotency-Key"][0]
    assert Execution.objects.count() == 1


def test_key_order_in_the_body_does_not_make_it_a_different_request(make_flow, api):
    make_flow("greeter", GREETER)
    first = api.post(
        "/api/executions/", '{"flow": "greeter", "input_value": {"a": 1, "b": 2}}',
        content_type="application/json", headers={"Idempotency-Key": "k"},
    )
    again = api.post(
        "/api/executions/", '{"input_value": {"b": 2, "a": 1}, "flow": "greeter"}',
        content_type="application/json", headers={"Idempotency-Key": "k"},
    )

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_another_user_with_the_same_key_starts_its_own_execution(make_flow, api, django_user_model):
    make_flow("greeter", GREETER)
    other = APIClient()
    other.force_authenticate(django_user_model.objects.create_superuser("other", password="p" * 12))

    mine = _start(api, "shared", flow="greeter")
    theirs = _start(other, "shared", flow="greeter")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert Execution.objects.count() == 2


def test_an_expired_key_starts_a_new_execution(make_flow, api, settings):
    make_flow("greeter", GREETER)
    first = _start(api, "k", flow="greeter")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(days=1, seconds=1))

    again = _start(api, "k", flow="greeter")

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    # and the new use counts from now on
    assert _start(api, "k", flow="greeter").json()["id"] == again.json()["id"]
    assert IdempotencyKey.objects.count() == 1


def test_the_window_follows_the_setting(make_flow, api, settings):
    settings.AUTOMATION = {**settings.AUTOMATION, "IDEMPOTENCY_SECONDS": 60}
    make_flow("greeter", GREETER)
    first = _start(api, "k", flow="greeter")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(seconds=61))

    assert _start(api, "k", flow="greeter").json()["id"] != first.json()["id"]


def test_a_key_longer_than_255_characters_answers_400_naming_the_header(make_flow, api):
    make_flow("greeter", GREETER)

    answer = _start(api, "x" * 256, flow="greeter")

    assert answer.status_code == 400
    assert "255" in answer.json()["Idempotency-Key"][0]
    assert Execution.objects.count() == 0
    assert _start(api, "x" * 255, flow="greeter").status_code == 201


def test_a_start_that_fails_does_not_keep_its_key(make_flow, api):
    refused = _start(api, "k", flow="greeter")
    assert refused.status_code == 404
    make_flow("greeter", GREETER)

    answer = _start(api, "k", flow="greeter")

    assert answer.status_code == 201
    assert Execution.objects.count() == 1


def test_without_a_key_every_request_starts_an_execution(make_flow, api):
    make_flow("greeter", GREETER)

    assert _start(api, None, flow="greeter").status_code == 201
    assert _start(api, None, flow="greeter").status_code == 201
    assert Execution.objects.count() == 2
    assert IdempotencyKey.objects.count() == 0


def test_retention_prunes_expired_keys_and_keeps_the_others(make_flow, api):
    make_flow("greeter", GREETER)
    _start(api, "old", flow="greeter")
    _start(api, "new", flow="greeter")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(days=2))

    assert prune_idempotency_keys() == 1

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert Execution.objects.count() == 2  # the executions are retention's own business


def test_a_key_goes_with_its_deleted_execution(make_flow, api):
    make_flow("greeter", GREETER)
    first = _start(api, "k", flow="greeter", wait=30)
    Execution.objects.filter(pk=first.json()["id"]).delete()

    assert IdempotencyKey.objects.count() == 0
    assert _start(api, "k", flow="greeter").status_code == 201


def test_twenty_concurrent_requests_with_one_key_start_one_execution(
    make_flow, token: str, static_root: Path, tmp_path: Path
):
    make_flow("greeter", GREETER)
    with running_web(tmp_path, static_root) as web:
        barrier = threading.Barrier(20, timeout=30)
        answers: list[requests.Response] = []
        errors: list[BaseException] = []

        def post() -> None:
            try:
                with requests.Session() as session:  # a connection of its own
                    barrier.wait()
                    answers.append(session.post(
                        f"{web.url}/api/executions/", json={"flow": "greeter"}, timeout=60,
                        headers={"Authorization": f"Token {token}", "Idempotency-Key": "once"},
                    ))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=post) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)

    assert not errors, errors
    assert len(answers) == 20
    assert Counter(a.status_code for a in answers) == {201: 1, 200: 19}, [a.text for a in answers]
    assert {a.json()["id"] for a in answers} == {Execution.objects.get().pk}
    assert all(a.headers.get("Idempotent-Replayed") == "true" for a in answers if a.status_code == 200)
