"""Retention: delete ended executions older than a cutoff, in short batches.

Only whole trees go: a top-level execution (no parent) that ended before the cutoff and has
no descendant still running. Its children, logs, messages and other related rows go with it
by the foreign keys' cascade. Each batch is its own short transaction, so the table is never
locked for long and the engine keeps running while a large backlog is pruned.

Expired idempotency keys (executions.engine.idempotency) are pruned here too, bounded per run.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..models import Execution, IdempotencyKey
from .idempotency import window

log = logging.getLogger(__name__)

_AGE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
BATCH_SIZE = 500


def parse_age(text: str) -> timedelta:
    """'30d', '12h' or '90m' as a timedelta; ValueError naming the format otherwise."""
    match = _AGE.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not an age: use a number and d, h or m (e.g. 30d, 12h, 90m)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _batch(cutoff: datetime, size: int) -> list[int]:
    not_ended = Execution.objects.exclude(status__in=Execution.ENDED)
    return list(
        Execution.objects.filter(
            parent__isnull=True, status__in=Execution.ENDED, ended_at__lt=cutoff
        )
        .exclude(pk__in=not_ended.filter(root__isnull=False).values("root_id"))
        .order_by("pk")
        .values_list("pk", flat=True)[:size]
    )


def prune(older_than: timedelta, *, batch_size: int = BATCH_SIZE, max_batches: int | None = None) -> int:
    """Delete ended execution trees that ended more than `older_than` ago; return how many
    top-level executions were deleted (their descendants are not counted)."""
    cutoff = timezone.now() - older_than
    deleted = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            ids = _batch(cutoff, batch_size)
            if not ids:
                break
            # Children first by the cascade; the collector walks logs, messages, descendants.
            Execution.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        batches += 1
    if deleted:
        log.info("retention: deleted %d ended executions older than %s", deleted, older_than)
    return deleted


def prune_idempotency_keys(*, batch_size: int = BATCH_SIZE, max_batches: int = 100) -> int:
    """Delete idempotency keys past AUTOMATION_IDEMPOTENCY_SECONDS, at most
    `batch_size * max_batches` per call (the next run takes the rest), each batch its own
    short statement; return how many. A use of an expired key replaces it anyway: this only
    keeps the table small."""
    cutoff = timezone.now() - window()
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            IdempotencyKey.objects.filter(created_at__lte=cutoff)
            .order_by("created_at")
            .values_list("pk", flat=True)[:batch_size]
        )
        if ids:
            deleted += IdempotencyKey.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            break
    if deleted:
        log.info("retention: deleted %d expired idempotency keys", deleted)
    return deleted
