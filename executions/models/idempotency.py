"""An `Idempotency-Key` a caller sent with a start: the first execution it started."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .execution import Execution


class IdempotencyKey(models.Model):
    """One caller's key and the execution its first request started.

    The unique (scope, key) pair is what holds under concurrent requests: the second INSERT
    waits for the first's transaction and then fails, and its caller answers with the
    first's execution (executions.engine.idempotency). A row older than
    AUTOMATION_IDEMPOTENCY_SECONDS no longer counts and is replaced by the next use of its
    key. It goes with its execution (retention): a key whose execution is gone protects
    nothing any more.
    """

    scope = models.CharField(
        max_length=64, help_text='Whose key: "user:<id>" (the API) or "webhook:<id>".'
    )
    key = models.CharField(max_length=255, help_text="The Idempotency-Key header's value.")
    request_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the request it came with (a canonical JSON)."
    )
    execution = models.ForeignKey(
        Execution, null=True, on_delete=models.CASCADE, related_name="+",
        # Null only inside the transaction that claims the key and then starts it.
        help_text="The execution the first request started.",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_one_per_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
