"""A message form that a flow shows to users."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from connectors.models import EncryptedJSONField

from .execution import Execution


class Message(models.Model):
    """A message form a flow shows to users; the flow may wait for its answer.

    Transitions (conditional updates, one winner): OPEN -> ANSWERED (answer),
    OPEN -> EXPIRED (its wait timed out, or its execution ended).
    """

    class Status(models.TextChoices):
        OPEN = "open"
        ANSWERED = "answered"
        EXPIRED = "expired"

    class Type(models.TextChoices):
        """Cloudomation's message types: how urgent the message is, shown with it."""

        INFO = "INFO"
        WARN = "WARN"
        ERROR = "ERROR"
        POPUP = "POPUP"

    execution = models.ForeignKey(
        Execution, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    subject = models.CharField(max_length=255, blank=True, default="")
    text = models.TextField(blank=True, default="", help_text="The message shown above the form.")
    body = models.JSONField(default=dict, blank=True, help_text="The form: a JSON-schema-like object.")
    message_type = models.CharField(
        max_length=8, choices=Type.choices, default=Type.INFO,
        help_text="INFO, WARN, ERROR or POPUP (a message to show at once to who is looking).",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    response = models.JSONField(
        null=True, blank=True, help_text="The answer; password elements are masked here."
    )
    secret_response = EncryptedJSONField(
        default=dict, blank=True, editable=False,
        help_text="The answers of password elements, encrypted, for the waiting flow only; "
        "erased when its execution ends.",
    )
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    step = models.PositiveIntegerField(
        null=True, blank=True, editable=False,
        help_text="Which of its execution's flow_api calls created it: a resumed handler "
        "finds it again instead of asking twice.",
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="A wait with a timeout: unanswered by then, it expires (also while parked).",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-id"], name="message_status_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "step"], name="message_one_per_step",
                condition=Q(step__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject or 'message'} ({self.status})"

    def answer(self, response: dict[str, Any], user: Any = None,
               secret: dict[str, Any] | None = None) -> bool:
        """OPEN -> ANSWERED; False if it was answered or expired already. `secret` holds
        the clear answers of password elements (`response` has them masked)."""
        now = timezone.now()
        who = user if user is not None and getattr(user, "is_authenticated", False) else None
        won = Message.objects.filter(pk=self.pk, status=self.Status.OPEN).update(
            status=self.Status.ANSWERED, response=response, answered_by=who, answered_at=now,
            secret_response=secret or {},
        )
        if won:
            self.status, self.response, self.answered_by, self.answered_at = (
                self.Status.ANSWERED, response, who, now,
            )
        return bool(won)

    def expire(self) -> bool:
        """OPEN -> EXPIRED; False if it was answered first."""
        won = Message.objects.filter(pk=self.pk, status=self.Status.OPEN).update(
            status=self.Status.EXPIRED
        )
        if won:
            self.status = self.Status.EXPIRED
        return bool(won)
