"""One run of anything (an execution), its states and its choices."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .flow import Flow


class Execution(models.Model):
    """One run of anything: a flow, an inline script, a connector call, a schedule's firing.

    Its `status` is written only by executions.engine.transitions, whose docstring holds the
    state table; every write there is one conditional UPDATE, so concurrent callers cannot
    both win.
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
        ERROR_HANDLER = "error_handler"  # started for a failed execution (engine.error_handlers)

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

    # flow, parent, root and schedule need no index of their own: the composite indexes
    # of Meta begin with them. Every index costs each start and each status change.
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions",
        db_index=False,
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
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children",
        db_index=False,
    )
    root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="descendants",
        db_index=False,
    )
    # The tree's limits (AUTOMATION_MAX_DEPTH / _MAX_DESCENDANTS, engine.start): a child's
    # depth is its parent's plus one, known without a query; a root counts its descendants
    # with one conditional update per child start.
    depth = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="How many parents it has (0: a root)."
    )
    descendant_count = models.PositiveIntegerField(
        default=0, editable=False,
        help_text="On a root: how many executions its tree has started below it.",
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
        db_index=False, help_text="The schedule whose firing this SCHEDULE execution is.",
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
    # Retries (executions.engine.retries): one execution id across its attempts.
    retry_policy = models.JSONField(
        default=dict, blank=True, editable=False,
        help_text="The retry policy it runs under (its flow's, or the one its call gave).",
    )
    attempt = models.PositiveIntegerField(default=1, editable=False, help_text="Its attempt, from 1.")
    previous_attempts = models.JSONField(
        default=list, blank=True, editable=False,
        help_text="The attempts that failed before this one: attempt, started_at, ended_at, "
        "status_message.",
    )
    # protect_inputs / protect_outputs of the call that started it (flow_api): these keys
    # of input_value / output_value are masked wherever it is shown (API, admin, logs).
    protect_inputs = models.JSONField(
        default=list, blank=True, editable=False,
        help_text="Keys of input_value shown masked (['*']: all of them).",
    )
    protect_outputs = models.JSONField(
        default=list, blank=True, editable=False,
        help_text="Keys of output_value shown masked (['*']: all of them).",
    )
    # Durable timers (executions.engine.timers): a sleep that no process holds.
    wake_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="A parked sleep's due time: the workers' timer loop resumes it then.",
    )
    sleeps = models.JSONField(
        default=dict, blank=True, editable=False,
        help_text="The due time of each of its sleeps, by step: a replayed sleep that is due "
        "returns at once, one that is not waits only for the rest.",
    )

    # A stop asked of a process that runs it (a cancel, a timeout): it ends `stop_status`
    # once its code no longer runs (executions.engine.transitions.request_stop).
    stop_status = models.CharField(
        max_length=16, blank=True, default="", editable=False,
        help_text="The end it was asked to stop with (a cancel: ENDED_CANCELLED) while its "
        "code still ran; it ends so once its code has stopped.",
    )
    stop_requested_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When that stop was asked."
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
            models.Index(  # the timer loop's one query, twice a second per worker
                fields=["wake_at"], name="execution_wake_idx", condition=Q(wake_at__isnull=False),
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

    @property
    def retry_pending(self) -> bool:
        """It failed and waits for (or is at the start of) its next attempt: the resume it
        waits for is the one its last failed attempt recorded."""
        return bool(self.previous_attempts) and self.previous_attempts[-1].get("resumes") in (
            self.resumes, self.resumes + 1)

    @property
    def waiting_reason(self) -> str:
        """Why a PENDING execution has not started, or what a WAITING one waits for ("" when
        nothing is known)."""
        if self.status == self.Status.WAITING:
            if self.waiting_message_id is not None:
                parked = " (parked: no worker holds it; the answer resumes it)" if self.parked else ""
                return f"waiting for the answer to message {self.waiting_message_id}{parked}"
            if self.wake_at is not None and self.parked and self.retry_pending:
                last = self.previous_attempts[-1]
                return (f"attempt {last.get('attempt')} failed; attempt {self.attempt} of "
                        f"{self.retry_policy.get('max_attempts')} starts at "
                        f"{self.wake_at:%Y-%m-%d %H:%M:%S} UTC (parked: no worker holds it)")
            if self.wake_at is not None:
                return (f"sleeping until {self.wake_at:%Y-%m-%d %H:%M:%S} UTC (parked: no worker "
                        "holds it; it resumes then)")
            return "parked: it goes on when the child it awaits ends" if self.parked else ""
        if self.status != self.Status.PENDING:
            return ""
        if self.deferred:
            return "created with run=False: it starts when it is run"
        return self.limit_reason()

    def limit_reason(self) -> str:
        """Why a PENDING execution waits for its flow's limit, or "" (one count query).

        From the rows only; whether any worker serves its queue is the engine's to add
        (executions.engine.records), from what the workers report of themselves.
        """
        flow = self.flow if self.type == self.Type.FLOW and self.flow_id else None
        if flow is None or flow.concurrency_limit is None:
            return ""
        active = Execution.objects.filter(
            flow_id=flow.pk, type=self.Type.FLOW, status__in=self.ACTIVE
        ).count()
        if active < flow.concurrency_limit:
            return ""
        return (
            f"flow {flow.name!r} is at its concurrency limit "
            f"({active} of {flow.concurrency_limit} running)"
        )

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at or timezone.now()
        return (end - self.started_at).total_seconds()
