"""HTTP clients for the `latency`, `webhook` and `api_throughput` scenarios: the web process
started exactly as the Procfile's `web:` line says (gunicorn with the shipped configuration),
on 127.0.0.1 (stopped by pid however the run ends), and keep-alive sessions to it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from . import harness

WAIT_SECONDS = 60
API_CLIENTS = 8  # the api_throughput scenario's concurrent keep-alive clients


def _route_exists(path: str) -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def procfile_web() -> str:
    """The command of the Procfile's `web:` line: what `make run` and compose start."""
    for line in (harness.ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit("[bench] the Procfile has no web: line")


class Server:
    """The Procfile's web line on 127.0.0.1, in its own process group, with the
    environment a user's `make run` gives it (its sizing variables left as they are)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        harness.LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = harness.LOG_DIR / "web.log"
        env = {
            **harness.worker_env(),
            "PORT": str(self.port),
            "WEB_HOST": "127.0.0.1",
            # The Procfile says `gunicorn`: this virtualenv's, as `make run` puts it first.
            "PATH": os.pathsep.join([str(os.path.dirname(sys.executable)), os.environ.get("PATH", "")]),
        }
        self.command = procfile_web()
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                ["sh", "-c", self.command], cwd=harness.ROOT, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        "the bench web server did not start:\n"
                        + self.log_path.read_text(errors="replace")[-2000:]
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        harness.stop_process_group(self.process, timeout=10)


def _session(base: str) -> Any:
    """A keep-alive session authenticated the cheapest way the API offers: an API token when
    one can be made, else a session cookie (with its CSRF pair). Never Basic auth, whose
    password hashing alone would cost more than the whole execution."""
    import secrets

    import requests
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    session = requests.Session()
    if "knox" in settings.INSTALLED_APPS:
        from knox.models import AuthToken

        _, token = AuthToken.objects.create(user=user)
        session.headers["Authorization"] = f"Token {token}"
        return session
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.create()
    csrf = secrets.token_hex(16)  # a bare 32-character secret: Django accepts it unmasked
    session.cookies.set(settings.SESSION_COOKIE_NAME, str(store.session_key), domain="127.0.0.1")
    session.cookies.set(settings.CSRF_COOKIE_NAME, csrf, domain="127.0.0.1")
    session.headers["X-CSRFToken"] = csrf
    session.headers["Referer"] = base + "/"
    return session


class ApiClient:
    """POST /api/executions/ with `wait`: the call returns when the execution ended."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = _session(base)

    def start(self, flow: str) -> int:
        """POST /api/executions/ without `wait`: answered once the execution is queued."""
        answer = self.session.post(
            f"{self.base}/api/executions/", json={"type": "FLOW", "flow": flow}, timeout=30
        )
        if answer.status_code != 201:
            raise RuntimeError(f"POST /api/executions/ answered {answer.status_code}: {answer.text[:500]}")
        return int(answer.json()["id"])

    def start_and_wait(self, flow: str) -> dict[str, Any]:
        answer = self.session.post(
            f"{self.base}/api/executions/",
            json={"type": "FLOW", "flow": flow, "wait": WAIT_SECONDS},
            timeout=WAIT_SECONDS + 10,
        )
        if answer.status_code >= 300:
            raise RuntimeError(f"POST /api/executions/ answered {answer.status_code}: {answer.text[:500]}")
        body: dict[str, Any] = answer.json()
        if body.get("status") != "ENDED_SUCCESS":
            raise RuntimeError(f"POST /api/executions/ did not wait for the end: {body}")
        return body


class WebhookClient:
    """A synchronous webhook call of the bench's trivial flow, its key in the header."""

    def __init__(self, base: str, url_path: str, key: str) -> None:
        import requests

        self.url = base + url_path
        self.session = requests.Session()
        self.session.headers["X-Webhook-Key"] = key

    def call(self) -> dict[str, Any]:
        answer = self.session.post(self.url, json={}, timeout=WAIT_SECONDS + 10)
        if answer.status_code >= 300:
            raise RuntimeError(f"webhook answered {answer.status_code}: {answer.text[:500]}")
        body: dict[str, Any] = answer.json()
        if body.get("status") != "ENDED_SUCCESS":
            raise RuntimeError(f"the webhook call did not wait for the end: {body}")
        return body


def _make_webhook() -> tuple[str, str] | None:
    """(URL path, key) of a bench webhook on the trivial flow; None where webhooks are not in."""
    path = f"/api/webhooks/{harness.NOOP}/call"
    try:
        from executions import webhooks
        from executions.models import Webhook  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    if not _route_exists(path):
        return None
    from django.contrib.auth import get_user_model

    key = webhooks.new_key()
    owner, _ = get_user_model().objects.get_or_create(  # calls act with their owner's rights
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    Webhook.objects.update_or_create(
        name=harness.NOOP,
        defaults={"flow_id": _flow_id(harness.NOOP), "enabled": True, "mode": "productive",
                  "key_hash": webhooks.hash_key(key), "user": owner},
    )
    return path, key


def _flow_id(name: str) -> int:
    from executions.models import Flow

    return int(Flow.objects.get(name=name).pk)


@contextlib.contextmanager
def clients(via: str, names: list[str], ctx: dict[str, Any]) -> Iterator[None]:
    """Put the HTTP clients the wanted scenarios need into `ctx` (and notes on what ran)."""
    api = _route_exists("/api/executions/")
    use_http = "latency" in names and via != "python" and api
    if "latency" in names and via == "http" and not api:
        raise SystemExit("[bench] --latency-via http: POST /api/executions/ is not there yet")
    hook = _make_webhook() if "webhook" in names else None
    if "webhook" in names and hook is None:
        ctx["webhook_skip"] = "webhooks are not in the engine yet (no /api/webhooks/<name>/call)"
    if "latency" in names and not use_http:
        ctx["latency_note"] = (
            "driven from Python through `executions.engine.start_execution` + `wait_for` "
            "(the calls the API view makes), not over HTTP: "
            + ("POST /api/executions/ is not there yet." if not api else "--latency-via python.")
        )
    elif use_http:
        ctx["latency_note"] = (
            "over HTTP: POST /api/executions/ with `wait` and an API token, one keep-alive "
            "client, to the web process as the Procfile starts it on 127.0.0.1."
        )
    api_clients = "api_throughput" in names and api
    if "api_throughput" in names and not api:
        ctx["api_throughput_skip"] = "POST /api/executions/ is not there yet"
    if not use_http and hook is None and not api_clients:
        yield
        return
    server = Server()
    ctx["web_command"] = server.command
    try:
        if use_http:
            ctx["http"] = ApiClient(server.base)
        if api_clients:
            ctx["api_clients"] = [ApiClient(server.base) for _ in range(API_CLIENTS)]
            ctx["api_throughput_note"] = (
                f"{API_CLIENTS} keep-alive clients in threads, each POSTing /api/executions/ "
                "without `wait`, to the same server; timed until the last execution ended."
            )
        if hook is not None:
            ctx["webhook"] = WebhookClient(server.base, *hook)
            ctx["webhook_note"] = (
                "synchronous webhook calls (key in the X-Webhook-Key header), one keep-alive "
                "client, to the same server as `latency`."
            )
        yield
    finally:
        server.stop()
