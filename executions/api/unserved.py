"""The answer to saving a flow, schedule or webhook says when no live worker serves its queue."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from executions.engine import workers_status

WARNING_HELP = (
    "Only in the answer to a create or update, and only when no live worker serves the queue "
    "its executions go to (they would wait PENDING): which queue."
)


def warning_field() -> serializers.CharField:
    """The read-only `warning` of a save's answer (absent from other answers)."""
    return serializers.CharField(read_only=True, help_text=WARNING_HELP)


def note_warning(record: Any) -> Any:
    """Attach `warning` to a saved record, for its serializer's answer."""
    warning = workers_status.save_warning(record)
    if warning:
        record.warning = warning
    return record


class WarnsWhenUnserved:
    """A ModelViewSet mixin: creates and updates answer with `warning` (see above)."""

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        note_warning(serializer.save())

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        note_warning(serializer.save())
