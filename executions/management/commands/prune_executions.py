"""`python manage.py prune_executions --older-than 30d`: delete old ended executions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from executions.engine.retention import BATCH_SIZE, parse_age, prune


class Command(BaseCommand):
    help = (
        "Delete ended executions (with their logs and children) that ended longer ago than "
        "--older-than, in batches of short transactions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", required=True, help="An age: a number and d, h or m (30d, 12h, 90m)."
        )
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE,
            help=f"Top-level executions deleted per transaction (default {BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            age = parse_age(options["older_than"])
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}") from None
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        deleted = prune(age, batch_size=options["batch_size"])
        self.stdout.write(f"deleted {deleted} ended executions older than {options['older_than']}")
