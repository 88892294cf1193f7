"""A named JSON value that flows share, which doubles as a lock."""

from __future__ import annotations

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .execution import Execution


class Setting(models.Model):
    """A named JSON value that flows share (`system.setting(name)`).

    It doubles as a lock (`setting.acquire()` / `release()`): `locked_by` is the execution
    holding it. A lock whose holder has ended counts as free, however it ended; the runner
    also releases an execution's locks when its handler stops (`release_locks`).
    """

    name = models.CharField(max_length=255, unique=True)
    value = models.JSONField(null=True, blank=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    locked_by = models.ForeignKey(
        Execution, null=True, blank=True, editable=False, on_delete=models.SET_NULL,
        related_name="+", help_text="The execution holding this setting as a lock.",
    )
    locked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def try_lock(cls, name: str, execution_id: int) -> bool:
        """Take the lock of setting `name` for `execution_id` if it is free, already its
        own, or held by an execution that has ended; create the setting (value null) if
        there is none. One conditional UPDATE: of concurrent callers, exactly one wins."""
        holder_ended = Exists(
            Execution.objects.filter(pk=OuterRef("locked_by"), status__in=Execution.ENDED)
        )
        free = Q(locked_by__isnull=True) | Q(locked_by=execution_id) | holder_ended
        for _ in range(2):
            if cls.objects.filter(free, name=name).update(
                locked_by=execution_id, locked_at=timezone.now()
            ):
                return True
            if cls.objects.filter(name=name).exists():
                return False
            cls.objects.get_or_create(name=name)  # race-safe: get on the unique name's clash
        return False

    @classmethod
    def unlock(cls, name: str, execution_id: int) -> bool:
        """Release the lock of setting `name` if `execution_id` holds it."""
        return bool(
            cls.objects.filter(name=name, locked_by=execution_id).update(
                locked_by=None, locked_at=None
            )
        )

    @classmethod
    def release_locks(cls, execution_id: int) -> int:
        """Release every lock `execution_id` holds (its handler stopped, however)."""
        return cls.objects.filter(locked_by=execution_id).update(locked_by=None, locked_at=None)
