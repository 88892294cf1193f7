"""One saved version of a flow's script."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from .flow import Flow


class FlowRevision(models.Model):
    """One saved version of a flow's script: who saved it, when, and what it said.

    A row is written after every save of a flow (one insert, from a post_save receiver), so
    the newest row is the flow's current script and the older ones are its history.
    `Execution.flow_revision` holds the `revision` number that an execution ran.
    """

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField(help_text="The flow's revision number at this save.")
    script = models.TextField(help_text="The flow's script as saved.")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        help_text="Who saved it; empty for saves outside the admin (API, load_flows).",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["flow", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "revision"], name="flowrevision_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.flow_id} revision {self.revision}"


def record_flow_revision(sender: type[Flow], instance: Flow, raw: bool = False, **_: Any) -> None:
    """post_save of Flow (connected in executions.signals): keep the saved script as a
    revision; the admin sets `instance.revision_author`."""
    if raw:  # loaddata: fixtures bring their own revisions
        return
    author = getattr(instance, "revision_author", None)
    FlowRevision.objects.bulk_create(
        [
            FlowRevision(
                flow_id=instance.pk,
                revision=instance.revision,
                script=instance.script,
                author=author if getattr(author, "is_authenticated", False) else None,
            )
        ],
        # A racing save that lost the revision bump must not fail the save itself.
        ignore_conflicts=True,
    )
