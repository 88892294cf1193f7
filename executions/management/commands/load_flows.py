"""`python manage.py load_flows DIR`: one flow per .py file, named after the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from executions.models import Flow, validate_script


class Command(BaseCommand):
    help = "Create or update one flow per .py file in DIR (flow name = file name)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["directory"])
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        for path in sorted(directory.glob("*.py")):
            source = path.read_text()
            try:
                validate_script(source)
            except ValidationError as exc:
                raise CommandError(f"{path}: {'; '.join(exc.messages)}") from None
            flow = Flow.objects.filter(name=path.stem).first()
            if flow is None:
                Flow.objects.create(name=path.stem, script=source)
                self.stdout.write(f"created {path.stem}")
            elif flow.script != source:
                flow.script = source
                flow.save()
                self.stdout.write(f"updated {path.stem} (revision {flow.revision})")
            else:
                self.stdout.write(f"unchanged {path.stem}")
