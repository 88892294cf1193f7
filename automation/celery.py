"""The Celery app. Workers start with `celery -A automation worker`."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging

from automation.startup import check_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
check_settings()  # a bad setting: one line naming it, not a traceback

app = Celery("automation")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A plain `celery -A automation worker` serves both modes of the default worker group.
# Queues of other groups are created when first used (task_create_missing_queues).
from django.conf import settings  # noqa: E402
from kombu import Exchange, Queue  # noqa: E402


def _queue(name: str) -> Queue:
    # Each queue its own direct exchange and key, as task_create_missing_queues would make it.
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


_default_group = settings.AUTOMATION["DEFAULT_QUEUE"]
app.conf.task_queues = [_queue(f"{_default_group}.productive"), _queue(f"{_default_group}.development")]
app.conf.task_default_queue = f"{_default_group}.productive"

# The reconciler runs on beat; safe to run twice at once (see executions/reconciler.py).
app.conf.beat_schedule = {
    "reconcile-executions": {
        "task": "executions.reconcile",
        "schedule": settings.AUTOMATION["RECONCILE_SECONDS"],
    },
    # Retention (AUTOMATION_RETENTION_DAYS, 0 = off) and expired idempotency keys: daily.
    "prune-executions": {
        "task": "executions.prune_executions",
        "schedule": 24 * 3600,
    },
}


def _django_logging(**kwargs: object) -> None:
    """LOG_FORMAT=json: worker and beat log through the settings' LOGGING (one JSON object
    per line) instead of Celery's own text format."""
    import logging.config

    logging.config.dictConfig(settings.LOGGING)


if settings.LOG_FORMAT == "json":
    # Connected, this signal stops Celery from configuring logging itself.
    setup_logging.connect(_django_logging, weak=False)
