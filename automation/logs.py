"""LOG_FORMAT=json: one JSON object per line, for a log stack (Loki, Elasticsearch, ...).

Each object has `time`, `level`, `logger`, `process` and `message`, plus `execution_id`,
`flow` and `status` where the line is about an execution: the engine passes them with
`extra=` (for example on the line each ended execution writes).
"""

from __future__ import annotations

from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter


class JsonFormatter(_JsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault(
            "rename_fields", {"levelname": "level", "name": "logger", "processName": "process"}
        )
        super().__init__("%(levelname)s %(name)s %(processName)s %(message)s", *args, **kwargs)
