"""`python manage.py worker --queues a,b`: a Celery worker for chosen worker groups.

Runs (by exec, so signals reach Celery directly) the same command as the Procfile's
`worker` line, with `-Q` built from groups and modes:

    celery -A automation worker -P prefork -c N -Q a.productive,a.development,b.productive,...
           --without-mingle --without-gossip -l info [extra celery arguments]

Arguments this command does not know are passed on to `celery worker` unchanged
(e.g. `-n remote1@%h`, `-E` for Flower's task events, `--max-tasks-per-child 100`).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from executions.engine.queues import celery_queue
from executions.models import Execution

# A group name becomes part of a Redis key and a Celery queue name: keep it plain.
GROUP_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def worker_command(
    groups: list[str], modes: list[str], concurrency: int, loglevel: str, extra: list[str]
) -> list[str]:
    """The `celery worker` command line for these groups and modes (productive first)."""
    queues = [celery_queue(group, mode) for group in groups for mode in modes]
    return [
        sys.executable, "-m", "celery", "-A", "automation", "worker",
        "-P", "prefork", "-c", str(concurrency), "-Q", ",".join(queues),
        "--without-mingle", "--without-gossip", "-l", loglevel, *extra,
    ]


class Command(BaseCommand):
    help = (
        "Start a Celery worker for the given worker groups (each in the given modes). "
        "Unknown arguments are passed on to `celery worker`."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parse_known = parser.parse_known_args

        def parse_args(args: Any = None, namespace: Any = None) -> Any:
            # Everything this command does not define belongs to `celery worker`.
            options, extra = parse_known(args, namespace)
            options.celery_args = [arg for arg in extra if arg != "--"]
            return options

        parser.parse_args = parse_args  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queues", default=settings.AUTOMATION["DEFAULT_QUEUE"],
            help="Comma-separated worker groups to serve (default: the default group).",
        )
        parser.add_argument(
            "--modes", default=",".join(Execution.Mode.values),
            help="Comma-separated modes to serve in each group (default: all).",
        )
        parser.add_argument(
            "--concurrency", "-c", type=int, default=2,
            help="Executions this worker runs at once (pool processes).",
        )
        parser.add_argument("--loglevel", "-l", default="info", help="Celery's log level.")
        parser.add_argument(
            "--print", action="store_true", dest="print_only",
            help="Print the celery command instead of running it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        groups = _split(options["queues"])
        modes = _split(options["modes"])
        if not groups:
            raise CommandError("--queues: name at least one worker group, e.g. --queues default")
        for group in groups:
            if not GROUP_NAME.match(group):
                raise CommandError(
                    f"--queues: {group!r} is not a worker group name "
                    "(letters, digits, '_' and '-'; the mode is added by --modes)"
                )
        if not modes:
            raise CommandError("--modes: name at least one mode")
        for mode in modes:
            if mode not in Execution.Mode.values:
                raise CommandError(
                    f"--modes: unknown mode {mode!r}; one of {', '.join(Execution.Mode.values)}"
                )
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        command = worker_command(
            groups, modes, options["concurrency"], options["loglevel"],
            list(options.get("celery_args") or []),
        )
        if options["print_only"]:
            self.stdout.write(shlex.join(["celery", *command[3:]]))
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(command[0], command)
