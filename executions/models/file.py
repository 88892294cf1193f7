"""A named file that flows and users share (`system.file(name)`), stored in the database."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def validate_file_name(name: str) -> None:
    """A file name is a path of folders: no empty segment, no leading or trailing spaces."""
    if not name or name.strip() != name or any(not part for part in name.split("/")):
        raise ValidationError("a file name has no empty folder ('//', leading or trailing '/') "
                              "and no leading or trailing spaces")


class File(models.Model):
    """A file: a unique name (may hold '/' as folders: `reports/today.csv`) and binary
    content in the database, at most AUTOMATION_MAX_FILE_BYTES."""

    name = models.CharField(
        max_length=255, unique=True, validators=[validate_file_name],
        help_text="Unique name; '/' separates folders (system.files(dir=...)).",
    )
    content = models.BinaryField(default=b"", blank=True, editable=False)
    size = models.PositiveBigIntegerField(default=0, editable=False, help_text="Bytes of content.")
    content_type = models.CharField(max_length=255, blank=True, default="application/octet-stream")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", help_text="Who saved it last (a user, or the user of a flow's execution).",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_content(self, data: bytes) -> None:
        self.content = bytes(data)
        self.size = len(self.content)
