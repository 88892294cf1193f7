"""The web process under load and faults, each test with a server of its own: database
connections stay within the pool's bound, and `/ready` names a Redis that stopped."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection

from executions.models import Flow, Webhook
from executions.webhooks import hash_key, new_key

from ..private_services import private_redis
from ..web_server import running_web

NOOP = "def handler(system, this):\n    return {'ok': True}\n"
pytestmark = pytest.mark.slow


def test_ready_answers_503_naming_redis_while_it_is_stopped(
    worker_process: Any, static_root: Path, tmp_path: Path
) -> None:
    with (
        private_redis(tmp_path) as redis_server,
        running_web(tmp_path, static_root, REDIS_URL=redis_server.url) as server,
    ):
        answer = requests.get(f"{server.url}/ready", timeout=5)
        assert answer.status_code == 503  # no worker uses this Redis
        assert answer.json()["missing"] == ["workers"]
        redis_server.kill()
        started = time.monotonic()
        answer = requests.get(f"{server.url}/ready", timeout=30)
        assert answer.status_code == 503
        assert "redis" in answer.json()["missing"]
        assert answer.json()["checks"]["database"] == "ok"
        assert time.monotonic() - started < 15
        assert requests.get(f"{server.url}/health", timeout=5).json() == {"status": "ok"}


APPLICATION = "automation-web-under-load"  # this test's server's connections, no other's


def _web_connections(database: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [database, APPLICATION],
        )
        return int(cursor.fetchone()[0])


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="counts PostgreSQL's connections (pg_stat_activity); SQLite has no server",
)
def test_database_connections_stay_within_the_pool_under_load(
    worker: Any, token: str, static_root: Path, tmp_path: Path, django_user_model: Any
) -> None:
    processes, pool = 2, 4
    bound = processes * pool
    Flow.objects.create(name="web-hooked", script=NOOP)
    key = new_key()
    Webhook.objects.create(
        name="web-hooked", flow=Flow.objects.get(name="web-hooked"), enabled=True,
        mode="productive", key_hash=hash_key(key), user=django_user_model.objects.get(username="web-admin"),
    )
    env = {"WEB_CONCURRENCY": str(processes), "WEB_THREADS": "16", "AUTOMATION_WEB_DB_POOL_SIZE": str(pool),
           "AUTOMATION_DB_APPLICATION_NAME": APPLICATION}
    database = settings.DATABASES["default"]["NAME"]
    with running_web(tmp_path, static_root, **env) as server:
        peak, sampling = [0], threading.Event()

        def sample() -> None:
            from django.db import connections

            while not sampling.is_set():
                peak[0] = max(peak[0], _web_connections(database))
                time.sleep(0.05)
            connections.close_all()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        local = threading.local()

        def session() -> requests.Session:
            if not hasattr(local, "session"):
                local.session = requests.Session()
                local.session.headers["Authorization"] = f"Token {token}"
            return local.session

        def api_call(n: int) -> tuple[int, str]:
            if n % 4 == 0:
                answer = session().post(
                    f"{server.url}/api/executions/", json={"flow": "web-hooked", "wait": 60}, timeout=90
                )
            else:
                answer = session().get(f"{server.url}/api/flows/?limit=1", timeout=90)
            return answer.status_code, answer.headers.get("Retry-After", "")

        def webhook_call(n: int) -> tuple[int, str]:
            answer = requests.post(
                f"{server.url}/api/webhooks/web-hooked/call", json={"n": n},
                headers={"X-Webhook-Key": key}, timeout=120,
            )
            return answer.status_code, answer.headers.get("Retry-After", "")

        try:
            with ThreadPoolExecutor(max_workers=40) as pool_40:
                api_answers = list(pool_40.map(api_call, range(400)))
            with ThreadPoolExecutor(max_workers=500) as pool_500:
                hook_answers = list(pool_500.map(webhook_call, range(500)))
        finally:
            sampling.set()
            sampler.join(timeout=10)
        for status, retry_after in api_answers + hook_answers:
            assert status < 500 or (status == 503 and retry_after), (status, server.log()[-2000:])
        assert sum(1 for status, _ in api_answers if status in (200, 201)) >= 380
        assert sum(1 for status, _ in hook_answers if status == 200) >= 475
        assert 0 < peak[0] <= bound, f"{peak[0]} connections of web, bound {bound}"
        assert _web_connections(database) <= bound
        after = requests.get(f"{server.url}/api/flows/?limit=1", headers={"Authorization": f"Token {token}"}, timeout=10)
        assert after.status_code == 200
