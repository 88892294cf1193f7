"""`python manage.py load_flows DIR [--update]`: one flow per .py file, named after the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from executions.models import Flow, validate_script


class Command(BaseCommand):
    help = (
        "Create one flow per .py file in DIR (flow name = file name) where no flow of that "
        "name exists. An existing flow is never replaced (a user may have edited it), unless "
        "--update is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory")
        parser.add_argument(
            "--update", action="store_true",
            help="replace existing flows whose script differs from the file (a new revision; "
            "earlier ones stay on the flow's Revisions page)",
        )

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
            elif not options["update"]:
                self.stdout.write(f"skipped {path.stem}: a flow of that name exists")
            elif flow.script != source:
                flow.script = source
                flow.save()
                self.stdout.write(f"updated {path.stem} (revision {flow.revision})")
            else:
                self.stdout.write(f"unchanged {path.stem}")
