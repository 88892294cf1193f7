"""The models of the executions app, one module per model, all importable from here.

The app label stays `executions` and the migrations are unchanged: Django finds the models
through this package exactly as it found them in the old single `models.py`.
"""

from __future__ import annotations

from .execution import Execution
from .execution_log import ExecutionLog
from .file import File, validate_file_name
from .flow import Flow, FlowQuerySet, flows_changed
from .flow_revision import FlowRevision, record_flow_revision
from .idempotency import IdempotencyKey
from .message import Message
from .schedule import (
    Schedule,
    ScheduleQuerySet,
    _now,  # named by migration 0002 (a field default): kept where it points
    _server_timezone,  # named by migration 0002 (a field default): kept where it points
    schedule_deleted,
    schedule_saved,
    schedules_changed,
)
from .setting import Setting
from .validators import (
    clean_retry_policy,
    validate_cron,
    validate_name,
    validate_script,
    validate_timezone,
)
from .webhook import Webhook

__all__ = [
    "Execution",
    "ExecutionLog",
    "File",
    "Flow",
    "FlowQuerySet",
    "FlowRevision",
    "IdempotencyKey",
    "Message",
    "Schedule",
    "ScheduleQuerySet",
    "Setting",
    "Webhook",
    "_now",
    "_server_timezone",
    "clean_retry_policy",
    "flows_changed",
    "record_flow_revision",
    "schedule_deleted",
    "schedule_saved",
    "schedules_changed",
    "validate_cron",
    "validate_file_name",
    "validate_name",
    "validate_script",
    "validate_timezone",
]
