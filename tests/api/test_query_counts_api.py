"""The SQL queries of one API start-with-wait and of one synchronous webhook call stay few.

Not timed: counted, in the web process (this test process; the worker's own queries, claim
and end, are counted by tests/test_query_counts.py). The flow sleeps a little so that the
waiter's first read finds it still running: the worst case, where the row is read again
after the "ended" notice. A change that adds a query to these requests fails here; if the
addition is deliberate, raise the bound in the same change and say why.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.test import APIClient

from executions import permissions
from executions.api.auth import issue_token
from executions.models import Execution, Webhook
from executions.webhooks import hash_key, new_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

SLEEPY = "import time\n\ndef handler(system, this):\n    time.sleep(0.3)\n    return None\n"

# The bounds: today's counts. Lower them when the requests get leaner.
# The token (with its user, one join: not the user's other tokens), the flow, the insert,
# the waiter's first read, its read after the notice (the view answers with that row).
API_START_WAIT_QUERIES = 5
# A user who is not a superuser: their own and their groups' permissions, once a request.
PERMISSION_QUERIES = 2
# The webhook (with its flow and user, one join), the insert, the waiter's two reads (the
# answer is the row the waiter read, not a third read).
WEBHOOK_CALL_QUERIES = 4


def _report(captured: CaptureQueriesContext) -> str:
    return "\n".join(q["sql"][:160] for q in captured.captured_queries)


def _token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)['token']}")
    return client


@pytest.mark.parametrize("superuser", [True, False], ids=["superuser", "operator"])
def test_one_api_start_with_wait_costs_five_queries(make_flow, django_user_model, superuser):
    make_flow("sleepy", SLEEPY)
    if superuser:
        user = django_user_model.objects.create_superuser("boss", password="p" * 12)
    else:
        permissions.sync_groups(apps, {"Operators": permissions.GROUPS["Operators"]})
        user = django_user_model.objects.create_user("op", password="p" * 12)
        user.groups.add(Group.objects.get(name="Operators"))
    for _ in range(3):  # more tokens of the same user cost nothing more
        AuthToken.objects.create(user)
    client = _token_client(user)
    body = {"flow": "sleepy", "wait": 30}
    assert client.post("/api/executions/", body, format="json").status_code == 201  # warm

    with CaptureQueriesContext(connection) as captured:
        answer = client.post("/api/executions/", body, format="json")

    assert answer.status_code == 201, answer.json()
    assert answer.json()["status"] == "ENDED_SUCCESS"
    assert answer.json()["flow"] == "sleepy"
    bound = API_START_WAIT_QUERIES + (0 if superuser else PERMISSION_QUERIES)
    assert len(captured.captured_queries) <= bound, _report(captured)


def test_one_synchronous_webhook_call_costs_four_queries_and_its_owners_rights(make_flow, django_user_model):
    flow = make_flow("sleepy", SLEEPY)
    user = django_user_model.objects.create_user("hooker", password="p" * 12)
    # A call acts with its owner's current rights, checked on every call.
    app_label, codename = permissions.start_permission(Execution.Mode.PRODUCTIVE).split(".")
    user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    key = new_key()
    Webhook.objects.create(name="sleepy", flow=flow, user=user, enabled=True,
                           mode=Execution.Mode.PRODUCTIVE, key_hash=hash_key(key))
    caller = APIClient()
    url = "/api/webhooks/sleepy/call"
    assert caller.post(url, {}, format="json", HTTP_X_WEBHOOK_KEY=key).status_code == 200  # warm

    with CaptureQueriesContext(connection) as captured:
        answer = caller.post(url, {"n": 1}, format="json", HTTP_X_WEBHOOK_KEY=key)

    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "ENDED_SUCCESS"
    assert answer.json()["flow"] == "sleepy"
    assert answer.json()["input_value"]["json"] == {"n": 1}
    assert len(captured.captured_queries) <= WEBHOOK_CALL_QUERIES + PERMISSION_QUERIES, _report(captured)


def test_an_expired_token_is_refused_and_deleted(django_user_model):
    user = django_user_model.objects.create_user("late", password="p" * 12)
    expired, token = AuthToken.objects.create(user, expiry=timedelta(seconds=-1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.get("/api/executions/").status_code == 401
    assert not AuthToken.objects.filter(pk=expired.pk).exists()


def test_issuing_a_token_deletes_the_users_expired_tokens_only(django_user_model):
    user = django_user_model.objects.create_user("tidy", password="p" * 12)
    other = django_user_model.objects.create_user("other", password="p" * 12)
    expired, _ = AuthToken.objects.create(user, expiry=timedelta(seconds=-1))
    others_expired, _ = AuthToken.objects.create(other, expiry=timedelta(seconds=-1))
    valid, _ = AuthToken.objects.create(user, expiry=timedelta(hours=1))
    forever, _ = AuthToken.objects.create(user)

    issue_token(user)

    left = set(AuthToken.objects.values_list("pk", flat=True))
    assert expired.pk not in left
    assert {others_expired.pk, valid.pk, forever.pk} <= left
    assert AuthToken.objects.filter(user=user).count() == 3  # valid, forever and the new one
