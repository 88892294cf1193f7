"""Flows, executions, their logs, and settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
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
    concurrency_limit = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="At most this many executions of the flow run at once, across all workers; "
        "the others wait PENDING and start oldest first. Empty = no limit.",
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
        PENDING  -> RUNNING            services.claim() (one conditional update: one winner)
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

    class Priority(models.TextChoices):
        HIGH = "high"
        NORMAL = "normal"
        LOW = "low"

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
    connector_type = models.CharField(
        max_length=32, blank=True, default="", help_text="Connector type of a CONNECTION execution."
    )
    connection = models.ForeignKey(
        "connectors.Connection", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="executions", help_text="The stored connection a CONNECTION execution calls.",
    )
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
    priority = models.CharField(
        max_length=8, choices=Priority.choices, default=Priority.NORMAL,
        help_text="Queued high before normal before low (children inherit their parent's).",
    )
    timeout = models.FloatField(null=True, blank=True, help_text="Seconds it may run.")
    deferred = models.BooleanField(
        default=False, help_text="Created with run=False: waits for run() before it is queued."
    )
    limited = models.BooleanField(
        default=False,
        help_text="Its flow had a concurrency limit when it was created: it is claimed "
        "through executions.limits (a limit added later holds executions created after).",
    )
    schedule = models.ForeignKey(
        "Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="firings",
        help_text="The schedule whose firing this SCHEDULE execution is.",
    )
    scheduled_for = models.DateTimeField(
        null=True, blank=True, help_text="The fire time of a SCHEDULE execution."
    )

    # Parked waits (executions.parking): a wait that no process holds, and what a resumed
    # handler needs to replay the flow_api calls it made before (see docs/README-schedules.md).
    step = models.PositiveIntegerField(
        null=True, blank=True, editable=False,
        help_text="Which of its parent's flow_api calls started it (1, 2, ...): a resumed "
        "parent finds it again instead of starting it twice.",
    )
    parked = models.BooleanField(
        default=False, editable=False,
        help_text="WAITING with no process holding the wait: a message answer (or its child "
        "ending) sends it again, and its handler replays up to where it waited.",
    )
    resumes = models.PositiveIntegerField(
        default=0, editable=False, help_text="How often it was resumed after being parked."
    )
    waiting_message = models.ForeignKey(
        "Message", null=True, blank=True, editable=False, on_delete=models.SET_NULL,
        related_name="+", help_text="The message form whose answer it waits for.",
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
        constraints = [
            # Exactly once per fire time: a second beat, a redelivery or a restart loses here.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"], name="execution_one_firing_per_time"
            ),
            # A resumed parent replaying its calls cannot start the same child twice.
            models.UniqueConstraint(
                fields=["parent", "step"], name="execution_one_child_per_step",
                condition=Q(step__isnull=False),
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

    def mark_waiting(self, message: Any = None) -> bool:
        """RUNNING -> WAITING (for a message form's answer, if `message` is given)."""
        if message is None:
            return self._transition((self.Status.RUNNING,), status=self.Status.WAITING)
        return self._transition(
            (self.Status.RUNNING,), status=self.Status.WAITING, waiting_message=message
        )

    def mark_running(self) -> bool:
        """WAITING or PAUSED -> RUNNING, unless it was parked and resumed elsewhere since."""
        updated = Execution.objects.filter(
            pk=self.pk, status__in=(self.Status.WAITING, self.Status.PAUSED), parked=False,
            resumes=self.resumes,
        ).update(status=self.Status.RUNNING, waiting_message=None)
        if updated:
            self.status, self.waiting_message = self.Status.RUNNING, None
        return bool(updated)

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

    @property
    def waiting_reason(self) -> str:
        """Why a PENDING execution has not started, or what a WAITING one waits for ("" when
        nothing is known)."""
        if self.status == self.Status.WAITING:
            if self.waiting_message_id is not None:
                parked = " (parked: no worker holds it; the answer resumes it)" if self.parked else ""
                return f"waiting for the answer to message {self.waiting_message_id}{parked}"
            return "parked: it goes on when the child it awaits ends" if self.parked else ""
        if self.status != self.Status.PENDING:
            return ""
        from .workers_status import waiting_reason

        return waiting_reason(self)

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




def validate_cron(expression: str) -> None:
    """Refuse a cron expression that croniter cannot read, saying why."""
    from croniter import croniter

    if len(expression.split()) != 5:
        raise ValidationError(
            f"{expression!r} is not a cron expression: it needs 5 fields "
            "(minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(expression)
    except (ValueError, KeyError) as exc:
        raise ValidationError(f"{expression!r} is not a valid cron expression: {exc}") from None


def validate_timezone(name: str) -> None:
    """Refuse a name that is not an IANA time zone."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not an IANA time zone (e.g. Europe/Vienna)") from None


def _server_timezone() -> str:
    return str(settings.TIME_ZONE)


def _now() -> Any:
    # Schedule has a field named `timezone`, which hides the module inside its class body.
    return timezone.now()


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    """Bulk changes keep the beat rows in step too (a plain update sends no signal)."""

    def update(self, **kwargs: Any) -> int:
        ids = list(self.values_list("pk", flat=True))
        count = super().update(**kwargs)
        if ids and not set(kwargs) <= {"last_fired_at", "next_fire_at", "periodic_task"}:
            from . import schedules

            schedules.sync_many(ids)
        return count

    def delete(self) -> tuple[int, dict[str, int]]:
        from . import schedules

        task_ids = list(self.exclude(periodic_task=None).values_list("periodic_task", flat=True))
        result = super().delete()
        schedules.delete_periodic_tasks(task_ids)
        return result


class Schedule(models.Model):
    """Starts a flow at fire times: a cron expression, an interval, or one moment (`at`).

    Each schedule owns one django-celery-beat `PeriodicTask`, written only by
    `executions.schedules` (kept in step on save, enable, disable and delete). Each firing
    is a SCHEDULE execution; (schedule, fire time) is unique, so a firing happens once.
    """

    class Overlap(models.TextChoices):
        ALLOW = "allow"
        SKIP = "skip"
        CANCEL_PREVIOUS = "cancel_previous"

    name = models.CharField(max_length=200, unique=True, help_text="Unique name.")
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="schedules",
        help_text="The flow each firing starts (a deleted flow leaves it empty).",
    )
    input_value = models.JSONField(
        default=dict, blank=True, help_text="Inputs of the flow; `scheduled_at` is added."
    )
    mode = models.CharField(
        max_length=16, choices=Execution.Mode.choices, default=Execution.Mode.PRODUCTIVE
    )
    enabled = models.BooleanField(default=True)
    cron = models.CharField(
        max_length=200, blank=True, default="", validators=[validate_cron],
        help_text="Cron expression (minute hour day month weekday), in `timezone`.",
    )
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Fire every this many seconds, counted from start_at."
    )
    at = models.DateTimeField(null=True, blank=True, help_text="Fire once at this moment.")
    timezone = models.CharField(
        max_length=64, default=_server_timezone, validators=[validate_timezone],
        help_text="IANA time zone of the cron expression.",
    )
    start_at = models.DateTimeField(null=True, blank=True, help_text="No firing before this.")
    end_at = models.DateTimeField(null=True, blank=True, help_text="No firing after this.")
    overlap = models.CharField(
        max_length=16, choices=Overlap.choices, default=Overlap.ALLOW,
        help_text="What a firing does while the previous one still runs.",
    )
    last_fired_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_fire_at = models.DateTimeField(null=True, blank=True, editable=False)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, editable=False,
        on_delete=models.SET_NULL, related_name="automation_schedule",
    )
    created_at = models.DateTimeField(default=_now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="schedule_one_kind",
                condition=(
                    (~Q(cron="") & Q(interval_seconds__isnull=True) & Q(at__isnull=True))
                    | (Q(cron="") & Q(interval_seconds__isnull=False) & Q(at__isnull=True))
                    | (Q(cron="") & Q(interval_seconds__isnull=True) & Q(at__isnull=False))
                ),
            ),
            models.CheckConstraint(
                name="schedule_interval_positive",
                condition=Q(interval_seconds__isnull=True) | Q(interval_seconds__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save and bring its beat row in step, in one transaction."""
        from django.db import transaction

        from . import schedules

        with transaction.atomic():
            super().save(*args, **kwargs)
            schedules.sync(self)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        from django.db import transaction

        from . import schedules

        with transaction.atomic():
            task_id = self.periodic_task_id
            result = super().delete(*args, **kwargs)
            schedules.delete_periodic_tasks([task_id] if task_id else [])
        return result

    def clean(self) -> None:
        kinds = [bool(self.cron), self.interval_seconds is not None, self.at is not None]
        if sum(kinds) != 1:
            raise ValidationError(
                {"cron": "give exactly one of cron, interval_seconds or at"}
            )
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValidationError({"end_at": "end_at must be after start_at"})


class Message(models.Model):
    """A message form a flow shows to users; the flow may wait for its answer.

    Transitions (conditional updates, one winner): OPEN -> ANSWERED (answer),
    OPEN -> EXPIRED (its wait timed out, or its execution ended).
    """

    class Status(models.TextChoices):
        OPEN = "open"
        ANSWERED = "answered"
        EXPIRED = "expired"

    execution = models.ForeignKey(
        Execution, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    subject = models.CharField(max_length=255, blank=True, default="")
    text = models.TextField(blank=True, default="", help_text="The message shown above the form.")
    body = models.JSONField(default=dict, blank=True, help_text="The form: a JSON-schema-like object.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    response = models.JSONField(null=True, blank=True)
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

    def answer(self, response: dict[str, Any], user: Any = None) -> bool:
        """OPEN -> ANSWERED; False if it was answered or expired already."""
        now = timezone.now()
        who = user if user is not None and getattr(user, "is_authenticated", False) else None
        won = Message.objects.filter(pk=self.pk, status=self.Status.OPEN).update(
            status=self.Status.ANSWERED, response=response, answered_by=who, answered_at=now
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


def _record_flow_revision(sender: type[Flow], instance: Flow, raw: bool = False, **_: Any) -> None:
    """Keep the saved script as a revision; the admin sets `instance.revision_author`."""
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


models.signals.post_save.connect(
    _record_flow_revision, sender=Flow, dispatch_uid="executions.flow_revision"
)


# --- Webhooks -----------------------------------------------------------------------------
def validate_name(name: str) -> None:
    """Refuse a name that cannot be one segment of a URL path."""
    if "/" in name or name.strip() != name or not name:
        raise ValidationError("a name has no '/' and no leading or trailing spaces")


class Webhook(models.Model):
    """A URL other systems call to start a flow: `/api/webhooks/<name>/call[/<sub-path>]`.

    The key is generated by `executions.webhooks`, shown once, and stored only as a
    SHA-256 digest in `key_hash`. New webhooks start disabled.
    """

    name = models.CharField(
        max_length=200, unique=True, validators=[validate_name],
        help_text="Unique name; part of the call URL.",
    )
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhooks",
        help_text="The flow each call starts (a deleted flow leaves it empty: calls answer 404).",
    )
    enabled = models.BooleanField(default=False, help_text="Disabled webhooks answer 404.")
    mode = models.CharField(
        max_length=16, choices=Execution.Mode.choices, default=Execution.Mode.PRODUCTIVE,
        help_text="The mode of the executions it starts.",
    )
    description = models.TextField(blank=True, default="")
    key_hash = models.CharField(
        max_length=64, editable=False, help_text="SHA-256 of the key; the key itself is not kept."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", help_text="On whose behalf its executions run (who created it).",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
