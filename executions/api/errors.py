"""Errors of the REST API: always JSON, naming the field (`{"field": ["message"]}`) or
giving a `detail`; never an HTML page.

DRF already answers its own exceptions so. This handler adds what DRF leaves to Django
(which would answer with an HTML page or a 500): a name already taken (409, where DRF
says 400), an unusable `Idempotency-Key` (400, or 422
when it was used with another request), model validation, values the database
refuses, integrity conflicts, and, as a last resort, any other exception (logged, then
answered `{"detail": ...}` with 500, still JSON).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from executions.engine.idempotency import HEADER as IDEMPOTENCY_HEADER
from executions.engine.idempotency import IdempotencyError

logger = logging.getLogger(__name__)


def _only_unique(codes: Any) -> bool:
    """Whether every error of a ValidationError is a uniqueness one (a name already taken)."""
    if isinstance(codes, dict):
        return bool(codes) and all(_only_unique(c) for c in codes.values())
    if isinstance(codes, list):
        return bool(codes) and all(_only_unique(c) for c in codes)
    return codes == "unique"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus JSON answers for the exceptions DRF does not know."""
    response = drf_exception_handler(exc, context)
    if response is not None:
        if isinstance(exc, ValidationError) and _only_unique(exc.get_codes()):
            response.status_code = status.HTTP_409_CONFLICT  # the name is taken: a conflict
        return response
    if isinstance(exc, IdempotencyError):  # named like a field: the header at fault
        answer = status.HTTP_422_UNPROCESSABLE_ENTITY if exc.conflict else status.HTTP_400_BAD_REQUEST
        return Response({IDEMPOTENCY_HEADER: [exc.message]}, status=answer)
    if isinstance(exc, OperationalError):
        log_unavailable(exc)
        return Response(
            UNAVAILABLE, status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    # The body could not be read: both surface while DRF parses `request.data`.
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "the request body is too large (more than "
             f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; AUTOMATION_MAX_BODY_BYTES)"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, RecursionError):  # json's decoder has a depth limit
        return Response(
            {"detail": "JSON parse error - the request body is nested too deeply"},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response({"non_field_errors": exc.messages}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DataError | ValueError):
        # A value the database cannot hold (a NUL byte, a number out of range, ...).
        logger.warning("API request refused by the database: %s", first_line(exc))
        return Response(
            {"detail": f"a value in the request is not valid: {first_line(exc)}"},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, ProtectedError | RestrictedError):
        return Response(
            {"detail": f"it is still in use: {first_line(exc)}"}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(exc, IntegrityError):
        return Response(
            {"detail": f"conflicts with existing data: {first_line(exc)}"},
            status=status.HTTP_409_CONFLICT,
        )
    logger.exception("API request failed", exc_info=exc)
    return Response(
        {"detail": "internal error; the server log has the details"},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


# How long a client told "database unavailable" should wait before it tries again.
RETRY_AFTER_SECONDS = 5


# 503 with Retry-After: the database cannot be reached, or every connection of this
# process's pool was busy (AUTOMATION_WEB_DB_POOL_SIZE) for AUTOMATION_DB_POOL_TIMEOUT s.
UNAVAILABLE = {"detail": "the database is unavailable or busy; try again later"}


def log_unavailable(exc: BaseException) -> None:
    logger.warning("database unavailable: %s", first_line(exc))


class DatabaseUnavailableMiddleware:
    """The same 503 for views outside DRF (the admin, webhook calls, health checks)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)  # type: ignore[no-any-return]

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError):
            return None
        log_unavailable(exception)
        response = JsonResponse(UNAVAILABLE, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@csrf_exempt  # a POST to a wrong path is answered 404, not refused for its missing CSRF token
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any path under /api/ that no route knows: JSON 404 (or the slash that was missing)."""
    if not request.path.endswith("/") and request.method in ("GET", "HEAD"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not not_found:
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(request.path + "/" + (f"?{query}" if query else ""))
    return JsonResponse({"detail": f"no API endpoint at {request.path}"}, status=404)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """For `handler404` in the root URLconf: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"no API endpoint at {request.path}"}, status=404)
    return page_not_found(request, exception or Exception("not found"))
