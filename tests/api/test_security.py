"""Security: throttled logins, no start without SECRET_KEY in production, HTTP(S)-only REST,
`check --deploy` clean with the documented production settings."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from executions import engine

ROOT = Path(__file__).resolve().parents[2]
SERVER_DB = "postgres://postgres@127.0.0.1:5432/automation_production_check"


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.django_db
def test_the_token_endpoint_answers_429_after_ten_attempts_a_minute() -> None:
    client = APIClient()
    username = f"guess-{uuid.uuid4().hex[:8]}"
    codes = [
        client.post("/api/auth/token/", {"username": username, "password": f"pw{n}"}, format="json").status_code
        for n in range(12)
    ]
    print(f"12 wrong passwords for {username}: {codes}")
    assert codes[:10] == [400] * 10
    assert codes[10:] == [429, 429]
    answer = client.post("/api/auth/token/", {"username": username, "password": "x"}, format="json")
    assert "throttled" in answer.json()["detail"].lower() and int(answer["Retry-After"]) > 0
    # Another user from the same address is not locked out by these attempts.
    other = client.post("/api/auth/token/", {"username": "someone-else", "password": "x"}, format="json")
    assert other.status_code == 400


@pytest.mark.django_db
def test_the_admin_login_answers_429_after_ten_attempts_a_minute() -> None:
    client = Client()
    username = f"guess-{uuid.uuid4().hex[:8]}"
    codes = [
        client.post("/admin/login/", {"username": username, "password": f"pw{n}"}).status_code
        for n in range(11)
    ]
    print(f"11 wrong admin passwords for {username}: {codes}")
    assert codes[:10] == [200] * 10  # the form again, with its error
    assert codes[10] == 429
    assert client.get("/admin/login/").status_code == 200  # the page itself still shows


@pytest.mark.django_db
def test_the_admin_login_needs_a_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    answer = client.post("/admin/login/", {"username": "a", "password": "b"})
    print(f"admin login without CSRF token -> {answer.status_code}")
    assert answer.status_code == 403


def test_without_secret_key_a_server_database_with_debug_off_fails_at_start() -> None:
    refused = _manage("check", env={"DATABASE_URL": SERVER_DB})
    print(f"no SECRET_KEY, PostgreSQL, DEBUG off -> exit {refused.returncode}")
    assert refused.returncode != 0
    assert "SECRET_KEY is not set" in refused.stderr
    for env in ({}, {"DATABASE_URL": SERVER_DB, "DEBUG": "1"}, {"DATABASE_URL": SERVER_DB, "SECRET_KEY": "k" * 50}):
        started = _manage("check", env=env)
        print(f"{sorted(env)} -> exit {started.returncode}")
        assert started.returncode == 0, started.stderr[-2000:]


def test_debug_is_off_unless_asked_for() -> None:
    shown = _manage("shell", "-c", "from django.conf import settings; print(settings.DEBUG)", env={})
    assert shown.stdout.strip().splitlines()[-1] == "False", shown.stderr[-2000:]


def test_check_deploy_passes_with_the_documented_production_settings() -> None:
    production = {
        "DATABASE_URL": SERVER_DB,
        "SECRET_KEY": "a-long-random-secret-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "automation.example.com",
        "AUTOMATION_HTTPS": "1",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=production)
    print(f"check --deploy -> exit {result.returncode}: {(result.stdout + result.stderr).strip()[-300:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    without_https = _manage("check", "--deploy", "--fail-level", "WARNING",
                            env={k: v for k, v in production.items() if k != "AUTOMATION_HTTPS"})
    assert without_https.returncode != 0  # the check does see a missing HTTPS setting


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize(
    "inputs",
    [
        {"url": "file:///etc/passwd"},
        {"url": "ftp://127.0.0.1/x"},
        {"url": "gopher://127.0.0.1:70/"},
        {"url": "FILE:///etc/hostname"},
        {"scheme": "file", "hostname": "localhost", "path": "/etc/passwd"},
    ],
)
def test_the_rest_connector_refuses_schemes_other_than_http_and_https(inputs) -> None:
    execution = engine.start_execution(type="CONNECTION", connector_type="REST", input_value=inputs)
    ended = engine.wait_for([execution.pk], timeout=30)[0]
    print(f"REST {inputs} -> {ended.status}: {ended.message}")
    assert ended.status == "ENDED_ERROR"
    assert "only http:// and https://" in ended.message
    assert "root:" not in str(ended.output_value)
