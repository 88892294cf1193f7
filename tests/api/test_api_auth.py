"""Who is calling: API tokens (hashed, revocable), the admin's session, HTTP basic."""

from __future__ import annotations

import base64
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="correct horse")


def test_a_username_and_password_buy_a_token_that_authenticates_calls(alice):
    client = APIClient()

    answer = client.post(
        "/api/auth/token/", {"username": "alice", "password": "correct horse"}, format="json"
    )

    assert answer.status_code == 201
    token = answer.json()["token"]
    assert answer.json()["expiry"] is None
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/executions/").status_code in (200, 403)  # authenticated
    assert client.get("/api/executions/").status_code != 401


def test_tokens_are_stored_only_as_hashes(alice):
    token = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": "correct horse"}, format="json"
    ).json()["token"]

    stored = AuthToken.objects.get(user=alice)
    assert token not in stored.digest
    assert stored.token_key == token[: len(stored.token_key)]  # only a short prefix is kept
    assert len(stored.token_key) < len(token)


def test_a_wrong_password_is_refused_with_json(alice):
    answer = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": "wrong"}, format="json"
    )

    assert answer.status_code == 400
    assert answer.json() == {"non_field_errors": ["wrong username or password"]}
    missing = APIClient().post("/api/auth/token/", {}, format="json")
    assert missing.status_code == 400
    assert set(missing.json()) == {"username", "password"}


def test_the_command_prints_a_new_token_that_works(alice):
    out = StringIO()

    call_command("create_api_token", "alice", stdout=out)

    token = out.getvalue().strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/flows/").status_code == 403  # known, but not allowed to read
    with pytest.raises(CommandError, match="no user named 'bob'"):
        call_command("create_api_token", "bob")


def test_a_revoked_token_stops_working(alice):
    client = APIClient()
    token = client.post(
        "/api/auth/token/", {"username": "alice", "password": "correct horse"}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.post("/api/auth/logout/").status_code == 204

    answer = client.get("/api/flows/")
    assert answer.status_code == 401
    assert "detail" in answer.json()


def test_calls_without_a_user_or_with_a_bad_token_are_401_json(alice):
    anonymous = APIClient()
    for path in ("/api/flows/", "/api/executions/", "/api/settings/", "/api/webhooks/"):
        answer = anonymous.get(path)
        assert answer.status_code == 401, path
        assert answer["WWW-Authenticate"].startswith("Token")
        assert answer.json()["detail"]
    for bad in ("not-a-token", "\xe9t\xe9", "0" * 200):  # not UTF-8 once encoded; too long
        anonymous.credentials(HTTP_AUTHORIZATION=f"Token {bad}")
        answer = anonymous.get("/api/flows/")
        assert answer.status_code == 401, bad
        assert answer.json()["detail"] == "Invalid token.", bad


def test_http_basic_and_the_admin_session_authenticate_too(alice, django_user_model):
    django_user_model.objects.create_superuser("root", password="p" * 12)
    basic = APIClient()
    basic.credentials(
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"root:" + b"p" * 12).decode()
    )
    assert basic.get("/api/flows/").status_code == 200

    session = APIClient(enforce_csrf_checks=True)
    assert session.login(username="root", password="p" * 12)
    assert session.get("/api/flows/").status_code == 200
    # A session write needs the CSRF token, as in the admin.
    assert session.post("/api/settings/", {"name": "a"}, format="json").status_code == 403


def test_the_schema_and_unknown_paths_answer_json_without_a_user():
    client = APIClient()
    assert client.get("/api/schema/").status_code == 200
    unknown = client.get("/api/flows/a/b/c/")
    assert unknown.status_code == 404
    assert unknown.json()["detail"]


def test_a_token_can_be_asked_for_with_a_form_too(alice):
    answer = APIClient().post("/api/auth/token/", {"username": "alice", "password": "correct horse"})

    assert answer.status_code == 201, answer.content
    assert answer.json()["token"]
