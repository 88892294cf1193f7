"""Retention: old ended executions go, with their logs and children, in short batches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions.engine.retention import parse_age, prune
from executions.models import Execution, ExecutionLog
from executions.tasks import prune_executions

pytestmark = pytest.mark.django_db(transaction=True)

Status = Execution.Status


def _tree(days_ago: float, status: str = Status.ENDED_SUCCESS, child_status: str | None = None) -> Execution:
    """A script execution with a log and one child, ended `days_ago` days ago."""
    ended = timezone.now() - timedelta(days=days_ago)
    root = Execution.objects.create(type="SCRIPT", status=status, ended_at=ended, created_at=ended)
    child = Execution.objects.create(
        type="SCRIPT", parent=root, root=root, status=child_status or status, ended_at=ended,
        created_at=ended,
    )
    ExecutionLog.objects.create(execution=root, text="root says hi")
    ExecutionLog.objects.create(execution=child, text="child says hi")
    return root


def test_ages_are_read_in_days_hours_and_minutes() -> None:
    assert parse_age("30d") == timedelta(days=30)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age("90m") == timedelta(minutes=90)
    for bad in ("30", "d", "-1d", "3w", ""):
        with pytest.raises(ValueError):
            parse_age(bad)


def test_the_command_deletes_old_ended_trees_with_their_logs_and_keeps_the_rest(capsys) -> None:
    old = [_tree(40) for _ in range(3)]
    recent = _tree(5)
    still_running = _tree(40, status=Status.RUNNING)
    child_running = _tree(40, child_status=Status.RUNNING)
    call_command("prune_executions", "--older-than", "30d", "--batch-size", "2")
    out = capsys.readouterr().out
    print(f"prune: {out.strip()}; {Execution.objects.count()} executions left")
    assert "deleted 3 ended executions" in out
    assert not Execution.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert not Execution.objects.filter(root__in=[e.pk for e in old]).exists()
    assert not ExecutionLog.objects.filter(execution__root__in=[e.pk for e in old]).exists()
    kept = {recent.pk, still_running.pk, child_running.pk}
    assert set(Execution.objects.filter(parent__isnull=True).values_list("pk", flat=True)) == kept
    assert ExecutionLog.objects.count() == 6  # two per kept tree


def test_each_batch_is_its_own_short_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(5):
        _tree(40)
    wrapper = connections["default"]
    commits: list[int] = []
    commit = wrapper.commit

    def counted_commit() -> None:
        commits.append(1)
        commit()

    monkeypatch.setattr(wrapper, "commit", counted_commit)
    with CaptureQueriesContext(connection) as queries:
        assert prune(timedelta(days=30), batch_size=2) == 5
    begins: list[Any] = [
        q for q in queries.captured_queries if "SAVEPOINT" in q["sql"] or q["sql"] == "BEGIN"
    ]
    if connection.vendor == "sqlite":
        # SQLite's driver opens its transactions itself and logs no BEGIN or SAVEPOINT:
        # there, count the commits, one per transaction.
        begins = commits
    print(f"prune of 5 trees in batches of 2: {len(queries)} queries, {len(begins)} transactions")
    assert len(begins) >= 3  # 5 trees, 2 per transaction
    assert Execution.objects.count() == 0


def test_a_bad_age_is_refused_naming_the_format() -> None:
    with pytest.raises(CommandError, match=r"--older-than.*d, h or m"):
        call_command("prune_executions", "--older-than", "thirty")


def test_the_beat_task_does_nothing_when_retention_is_off_and_prunes_when_on(settings) -> None:
    _tree(40)
    _tree(2)
    settings.AUTOMATION = {**settings.AUTOMATION, "RETENTION_DAYS": 0}
    assert prune_executions() == 0
    assert Execution.objects.filter(parent__isnull=True).count() == 2
    settings.AUTOMATION = {**settings.AUTOMATION, "RETENTION_DAYS": 30}
    assert prune_executions() == 1
    assert Execution.objects.filter(parent__isnull=True).count() == 1


def test_beat_runs_the_retention_task() -> None:
    from automation.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "executions.prune_executions" in tasks
