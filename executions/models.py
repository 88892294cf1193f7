"""Flows, executions, their logs, and settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone


def validate_script(source: str) -> None:
    """Refuse a script that does not compile, naming the line."""
    try:
        compile(source, "<flow>", "exec")
    except SyntaxError as exc:
        raise ValidationError(f"line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. NUL bytes in the source
        raise ValidationError(str(exc)) from None


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
    enabled = models.BooleanField(default=True, help_text="Disabled flows cannot be started.")
    revision = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

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


class Execution(models.Model):
    """One run of anything: a flow, an inline script, a connector call, a schedule's firing.

    Transitions (only these methods change `status`; each refuses illegal moves):
        PENDING  -> RUNNING            claim()        (one conditional update: one winner)
        RUNNING <-> WAITING            mark_waiting() / mark_running()
        RUNNING/WAITING <-> PAUSED     pause() / resume()
        any non-ended -> ENDED_*       mark_ended()
    """

    class Type(models.TextChoices):
        FLOW = "FLOW"
        SCRIPT = "SCRIPT"
        CONNECTION = "CONNECTION"
        SCHEDULE = "SCHEDULE"

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        WAITING = "WAITING"
        PAUSED = "PAUSED"
        ENDED_SUCCESS = "ENDED_SUCCESS"
        ENDED_ERROR = "ENDED_ERROR"
        ENDED_CANCELLED = "ENDED_CANCELLED"

    class Mode(models.TextChoices):
        PRODUCTIVE = "productive"
        DEVELOPMENT = "development"

    class Trigger(models.TextChoices):
        ADMIN = "admin"
        API = "api"
        WEBHOOK = "webhook"
        SCHEDULE = "schedule"
        PARENT = "parent"
        CLI = "cli"

    ENDED = (Status.ENDED_SUCCESS, Status.ENDED_ERROR, Status.ENDED_CANCELLED)
    ACTIVE = (Status.RUNNING, Status.WAITING, Status.PAUSED)

    type = models.CharField(max_length=16, choices=Type.choices, default=Type.FLOW)
    name = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PRODUCTIVE)
    input_value = models.JSONField(default=dict, blank=True)
    output_value = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True, default="", help_text="Status message or error.")

    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    flow_revision = models.PositiveIntegerField(null=True, blank=True)
    script = models.TextField(blank=True, default="", help_text="Source of a SCRIPT execution.")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="descendants"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.API)
    trigger_ref = models.CharField(
        max_length=255, blank=True, default="", help_text="Which webhook or schedule, if any."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    queue = models.CharField(max_length=100, help_text="Worker group that runs it.")
    timeout = models.FloatField(null=True, blank=True, help_text="Seconds it may run.")
    deferred = models.BooleanField(
        default=False, help_text="Created with run=False: waits for run() before it is queued."
    )

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "-id"], name="execution_status_idx"),
            models.Index(fields=["flow", "-id"], name="execution_flow_idx"),
            models.Index(fields=["parent", "id"], name="execution_parent_idx"),
            models.Index(fields=["root", "id"], name="execution_root_idx"),
            models.Index(
                fields=["status", "heartbeat_at"],
                name="execution_active_idx",
                condition=Q(status__in=["PENDING", "RUNNING", "WAITING"]),
            ),
        ]
        permissions = [
            ("try_execution", "Can start development executions (Try)"),
            ("run_execution", "Can start productive executions (Run)"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name or self.pk} ({self.status})"

    @property
    def is_ended(self) -> bool:
        return self.status in self.ENDED

    @property
    def root_id_or_self(self) -> int:
        return self.root_id or self.pk

    # --- transitions: each is one conditional UPDATE, so concurrent callers cannot both win.
    def _transition(self, allowed: tuple[str, ...], **changes: Any) -> bool:
        updated = Execution.objects.filter(pk=self.pk, status__in=allowed).update(**changes)
        if updated:
            for field, value in changes.items():
                if not hasattr(value, "resolve_expression"):
                    setattr(self, field, value)
        return bool(updated)

    def claim(self) -> bool:
        """PENDING -> RUNNING. True for the one caller that won the row."""
        now = timezone.now()
        return self._transition(
            (self.Status.PENDING,), status=self.Status.RUNNING, started_at=now, heartbeat_at=now
        )

    def mark_waiting(self) -> bool:
        return self._transition((self.Status.RUNNING,), status=self.Status.WAITING)

    def mark_running(self) -> bool:
        return self._transition(
            (self.Status.WAITING, self.Status.PAUSED), status=self.Status.RUNNING
        )

    def pause(self) -> bool:
        return self._transition((self.Status.RUNNING, self.Status.WAITING), status=self.Status.PAUSED)

    def resume(self) -> bool:
        return self._transition((self.Status.PAUSED,), status=self.Status.RUNNING)

    def mark_ended(
        self, status: str, message: str = "", output_value: dict[str, Any] | None = None
    ) -> bool:
        """Any non-ended state -> an ENDED_* state; False if it had already ended."""
        if status not in self.ENDED:
            raise ValueError(f"{status} is not an end state")
        changes: dict[str, Any] = {"status": status, "message": message, "ended_at": timezone.now()}
        if output_value is not None:
            changes["output_value"] = output_value
        return self._transition((self.Status.PENDING, *self.ACTIVE), **changes)

    def touch_heartbeat(self) -> None:
        Execution.objects.filter(pk=self.pk).update(heartbeat_at=timezone.now())

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at or timezone.now()
        return (end - self.started_at).total_seconds()


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


