from __future__ import annotations

import sys

from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: signals imports the models, which Django allows
        # only once the app registry is ready.
        from . import signals

        signals.connect()
        # Inline children nest handler calls; deep chains of them need room.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
