"""One structured log entry of an execution."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .execution import Execution


class ExecutionLog(models.Model):
    """One structured log entry of an execution (`this.log(...)`)."""

    class Level(models.TextChoices):
        DEBUG = "DEBUG"
        INFO = "INFO"
        WARNING = "WARNING"
        ERROR = "ERROR"

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="logs")
    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    text = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["execution", "id"], name="executionlog_exec_idx")]

    def __str__(self) -> str:
        return f"[{self.level}] {self.text}"
