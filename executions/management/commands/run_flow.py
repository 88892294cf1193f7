"""`python manage.py run_flow NAME --input k=v --input-json '{...}' [--wait] [--development]`."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from executions import engine
from executions.engine import workers_status
from executions.engine.records import execution_json
from executions.models import Execution

# How long --wait waits before it says that no worker serves the execution's queue: long
# enough for a busy worker to take it, short enough that nobody stares at a silent terminal.
NO_WORKER_NOTICE_SECONDS = 5.0


class Command(BaseCommand):
    help = "Start a flow; print the execution as JSON; exit non-zero unless it succeeded."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the flow's name")
        parser.add_argument(
            "--input", action="append", default=[], metavar="KEY=VALUE",
            help="an input value (repeatable); VALUE is parsed as JSON when it can be",
        )
        parser.add_argument("--input-json", default=None, help="all inputs as one JSON object")
        parser.add_argument("--wait", action="store_true", help="wait until the execution ended")
        parser.add_argument("--timeout", type=float, default=None, help="longest wait, seconds")
        parser.add_argument(
            "--development", action="store_true", help="start in development mode (Try)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        inputs: dict[str, Any] = {}
        if options["input_json"]:
            try:
                inputs = json.loads(options["input_json"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"--input-json is not valid JSON: {exc}") from None
            if not isinstance(inputs, dict):
                raise CommandError("--input-json must be a JSON object")
        for item in options["input"]:
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--input {item!r} is not KEY=VALUE")
            try:
                inputs[key] = json.loads(raw)
            except json.JSONDecodeError:
                inputs[key] = raw
        mode = Execution.Mode.DEVELOPMENT if options["development"] else Execution.Mode.PRODUCTIVE
        try:
            execution = engine.start_execution(
                flow=options["name"], input_value=inputs, mode=mode, trigger=Execution.Trigger.CLI
            )
        except engine.StartError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        if options["wait"]:
            execution = self._wait(execution, options["timeout"])
        self.stdout.write(json.dumps(execution_json(execution), indent=2))
        if options["wait"] and execution.status != Execution.Status.ENDED_SUCCESS:
            raise CommandError(f"execution {execution.pk} ended {execution.status}", returncode=1)
        if not options["wait"] and execution.is_ended and execution.status != Execution.Status.ENDED_SUCCESS:
            raise CommandError(f"execution {execution.pk} ended {execution.status}", returncode=1)

    def _wait(self, execution: Execution, timeout: float | None) -> Execution:
        """Wait until it ended or `timeout` ran out, saying (once, on stderr) when no live
        worker serves its queue: it would wait forever without a word otherwise."""
        deadline = None if timeout is None else time.monotonic() + timeout
        first = NO_WORKER_NOTICE_SECONDS if timeout is None else min(timeout, NO_WORKER_NOTICE_SECONDS)
        execution = engine.wait_for([execution.pk], timeout=first)[0]
        if execution.is_ended or (deadline is not None and time.monotonic() >= deadline):
            return execution
        reason = (
            workers_status.unserved_reason(execution)
            if execution.status == Execution.Status.PENDING else ""
        )
        if reason:
            self.stderr.write(
                f"execution {execution.pk} is still PENDING: {reason}; waiting on "
                "(start a worker for it: manage.py worker --queues <group>)"
            )
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        return engine.wait_for([execution.pk], timeout=remaining)[0]
