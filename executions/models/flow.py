"""A stored flow: its script and its knobs."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.dispatch import Signal
from django.utils import timezone

from .validators import validate_retry_policy, validate_script

# A bulk update of flows sends no post_save: this says they changed (executions.signals
# tells the workers, which drop the flows they keep).
flows_changed = Signal()  # sender=Flow


class FlowQuerySet(models.QuerySet["Flow"]):
    def update(self, **kwargs: Any) -> int:
        count = super().update(**kwargs)
        if count:
            flows_changed.send(sender=Flow)
        return count


class Flow(models.Model):
    """A stored Python script with a `handler(system, this)`; each save bumps `revision`."""

    name = models.CharField(max_length=255, unique=True, help_text="Unique name, used to start it.")
    script = models.TextField(
        validators=[validate_script], help_text="Python source with handler(system, this)."
    )
    description = models.TextField(blank=True, default="")
    timeout = models.FloatField(
        null=True, blank=True, help_text="Seconds an execution may run before it is ended."
    )
    queue = models.CharField(
        max_length=100, blank=True, default="", help_text="Worker group; empty = the default group."
    )
    concurrency_limit = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="At most this many executions of the flow run at once, across all workers; "
        "the others wait PENDING and start oldest first. Empty = no limit.",
    )
    error_handler = models.CharField(
        max_length=255, blank=True, default="",
        help_text="Name of the flow started when an execution of this one ends ENDED_ERROR "
        "(input: execution_id, flow, status_message, attempt). Empty = "
        "AUTOMATION_DEFAULT_ERROR_HANDLER, if set. A name, not a link: deleting that flow "
        "leaves this one as it is.",
    )
    retry_policy = models.JSONField(
        default=dict, blank=True, validators=[validate_retry_policy],
        help_text='Retries of a failed execution, with backoff: {"max_attempts": 3, '
        '"initial_delay": 1, "max_delay": 60, "multiplier": 2, "retry_on": []} (seconds; '
        'retry_on: exception names such as "ConnectionError", empty = any error). '
        "Empty = no retries.",
    )
    class Recovery(models.TextChoices):
        FAIL = "fail", "fail: it ends in error (worker lost, worker shut down)"
        REPLAY = "replay", "replay: it resumes on another worker, replaying its recorded calls"

    recovery = models.CharField(
        max_length=10, choices=Recovery.choices, default=Recovery.FAIL,
        help_text="What happens to a running execution when its worker stops or dies: fail, "
        "or replay its handler on another worker (its children, connections, forms and "
        "sleeps return their recorded results; plain Python runs again).",
    )
    enabled = models.BooleanField(default=True, help_text="Disabled flows cannot be started.")
    revision = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FlowQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            # Read and bump in the database so that two saves never share a revision.
            self.revision = (
                Flow.objects.filter(pk=self.pk).values_list("revision", flat=True).first() or 0
            ) + 1
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "revision", "updated_at"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        self.check_error_handler()

    def check_error_handler(self) -> None:
        """Refuse an `error_handler` that names no stored flow, or this flow itself."""
        name = self.error_handler
        if not name:
            return
        if name == self.name:
            raise ValidationError({"error_handler": "a flow cannot be its own error handler"})
        if not Flow.objects.filter(name=name).exists():
            raise ValidationError({"error_handler": f"no flow named {name!r}"})
