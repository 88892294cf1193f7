"""A named JSON value that flows share."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Setting(models.Model):
    """A named JSON value that flows share (`system.setting(name)`)."""

    name = models.CharField(max_length=255, unique=True)
    value = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
