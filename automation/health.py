"""`/health`, `/ready` and `/metrics`: for load balancers, orchestrators and Prometheus.

- `/health`: the web process answers (no database, no Redis): 200 `{"status": "ok"}`.
- `/ready`: it can do its work: the database answers, Redis answers, and at least one live
  worker consumes a queue of the default worker group. 200, or 503 naming what is missing.
- `/metrics`: the Prometheus text format (executions.engine.metrics). Callers on loopback need no
  credentials; others send `Authorization: Bearer <AUTOMATION_METRICS_TOKEN>`, else 403.

None of them needs a session or a CSRF token, and each costs a few milliseconds.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from executions.api.errors import first_line
from executions.engine import notify, workers_status
from executions.engine.metrics import EngineCollector
from executions.engine.queues import celery_queue, default_group

_REGISTRY = CollectorRegistry(auto_describe=False)
_REGISTRY.register(EngineCollector())


@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Any] = {}
    missing: list[str] = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as exc:
        checks["database"] = first_line(exc)
        missing.append("database")
    workers: dict[str, list[str]] = {}
    try:
        notify.client().ping()
        checks["redis"] = "ok"
        workers = workers_status.live_workers()
        checks["isolation"] = workers_status.worker_isolation()
    except (redis.RedisError, OSError) as exc:
        checks["redis"] = first_line(exc)
        missing.append("redis")
    group = default_group()
    wanted = {celery_queue(group, "productive"), celery_queue(group, "development")}
    serving = sorted(name for name, queues in workers.items() if wanted & set(queues))
    checks["workers"] = serving
    if "redis" not in missing and not serving:
        checks["workers"] = f"no live worker consumes {' or '.join(sorted(wanted))}"
        missing.append("workers")
    if missing:
        return JsonResponse({"status": "unavailable", "missing": missing, "checks": checks}, status=503)
    return JsonResponse({"status": "ok", "checks": checks})


def _may_scrape(request: HttpRequest) -> bool:
    try:
        if ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback:
            return True
    except ValueError:
        pass
    token = settings.AUTOMATION["METRICS_TOKEN"]
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not _may_scrape(request):
        detail = (
            "metrics need `Authorization: Bearer <AUTOMATION_METRICS_TOKEN>` from outside loopback"
            if settings.AUTOMATION["METRICS_TOKEN"]
            else "metrics are served to loopback only (set AUTOMATION_METRICS_TOKEN for others)"
        )
        return JsonResponse({"detail": detail}, status=403)
    try:
        body = generate_latest(_REGISTRY)
    except (redis.RedisError, OSError) as exc:
        return JsonResponse({"detail": f"Redis is unavailable: {first_line(exc)}"}, status=503)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
