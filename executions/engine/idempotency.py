"""Idempotency keys: a caller's retry with the same `Idempotency-Key` starts nothing new.

The API (scope "user:<id>") and webhook calls (scope "webhook:<id>") share this one
implementation. A key counts for AUTOMATION_IDEMPOTENCY_SECONDS after its first use:

    first use                       its execution is started (the interface says 201 or so)
    the same key, the same request  the first execution, `replayed` (200, Idempotent-Replayed)
    the same key, another request   IdempotencyError(conflict=True) (422 naming the header)
    a key older than the window     replaced: a new execution

Concurrent requests with one key are held by the unique (scope, key) constraint, not by a
read: the claim is an INSERT in the transaction that also starts the execution. A second
INSERT of the same pair waits for that transaction and then fails (or, if it rolled back,
succeeds); the loser rolls back to its savepoint, having started nothing, and reads the
winner's committed row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from hashlib import sha256
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Execution, IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = IdempotencyKey._meta.get_field("key").max_length or 255
# A winner's row can vanish between our failed INSERT and our read (it expired and another
# request replaced it, or retention deleted its execution): claim again, a few times.
_ATTEMPTS = 3


class IdempotencyError(ValueError):
    """The key cannot be used: malformed (`conflict` false) or already used with another
    request (`conflict` true)."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.conflict = conflict


@dataclass(frozen=True)
class Started:
    """What `start_once` gives: the execution, and whether an earlier request started it."""

    execution: Execution
    replayed: bool


def window() -> timedelta:
    """How long a key counts after its first use (AUTOMATION_IDEMPOTENCY_SECONDS)."""
    return timedelta(seconds=float(settings.AUTOMATION["IDEMPOTENCY_SECONDS"]))


def key_from(headers: Mapping[str, str]) -> str | None:
    """The request's `Idempotency-Key`, None without one; IdempotencyError if unusable."""
    value = headers.get(HEADER)
    if value is None:
        return None
    if not value:
        raise IdempotencyError("must not be empty")
    if len(value) > MAX_KEY_LENGTH:
        raise IdempotencyError(f"is at most {MAX_KEY_LENGTH} characters long")
    if not all(" " <= c <= "~" for c in value):  # an sf-string: printable ASCII only
        raise IdempotencyError("may hold only printable ASCII characters")
    return value


def request_digest(request: Any) -> str:
    """SHA-256 of a canonical JSON of what the request asked for (key order ignored)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return sha256(canonical.encode()).hexdigest()


def start_once(
    scope: str, key: str | None, digest: str, start: Callable[[], Execution]
) -> Started:
    """Call `start` (which starts one execution) unless `key` was used in `scope` within the
    window; then return that first execution as replayed. Without a key, just `start`.

    `start`'s own exceptions (StartError) propagate, and its key is not kept: a request
    that started nothing may be sent again. IdempotencyError when the key came with
    another request (another `digest`).
    """
    if key is None:
        return Started(start(), replayed=False)
    for _ in range(_ATTEMPTS):
        now = timezone.now()
        with transaction.atomic():
            # An expired row would block the INSERT: it goes first, in this transaction.
            # A concurrent request deleting the same row waits for us, then finds ours.
            IdempotencyKey.objects.filter(
                scope=scope, key=key, created_at__lte=now - window()
            ).delete()
            try:
                with transaction.atomic():  # the savepoint a losing INSERT rolls back to
                    claim = IdempotencyKey.objects.create(
                        scope=scope, key=key, request_hash=digest, created_at=now
                    )
            except IntegrityError:
                pass
            else:
                execution = start()
                IdempotencyKey.objects.filter(pk=claim.pk).update(execution=execution)
                return Started(execution, replayed=False)
        first = _first_use(scope, key)
        if first is None:
            continue
        if first.request_hash != digest:
            raise IdempotencyError(
                "was used with a different request: send a new key for a new request",
                conflict=True,
            )
        return Started(first.execution, replayed=True)  # type: ignore[arg-type]
    raise IdempotencyError(  # a pathological race: the caller may simply retry
        "could not be claimed or found; send the request again", conflict=True
    )


def _first_use(scope: str, key: str) -> IdempotencyKey | None:
    """The committed row of (scope, key), if it still counts and its execution exists."""
    return (
        IdempotencyKey.objects.select_related("execution__flow")
        .filter(
            scope=scope, key=key, execution__isnull=False,
            created_at__gt=timezone.now() - window(),
        )
        .first()
    )

