"""gunicorn's configuration for the web process (`gunicorn -c automation/gunicorn.py`).

gthread workers: each of `WEB_CONCURRENCY` processes serves `WEB_THREADS` requests at once,
on kept-alive connections. A request that waits (`POST /api/executions/` with `wait`, a
synchronous webhook) holds a thread, not a process, and no database connection while it
sleeps (executions.engine.waiting returns it to the pool). gunicorn sets TCP_NODELAY, so a
kept-alive answer is not held back by the client's delayed ACK as with `runserver`.
"""

from __future__ import annotations

import gc
import os
import sys


def _whole_number(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        sys.exit(f"configuration error: {name}={raw!r} must be a whole number of at least {minimum}.")
    return value


bind = [f"{os.environ.get('WEB_HOST') or '127.0.0.1'}:{os.environ.get('PORT') or '8000'}"]
worker_class = "gthread"
workers = _whole_number("WEB_CONCURRENCY", 2)
threads = _whole_number("WEB_THREADS", 16)
# Longer than the idle time of most clients' pools and load balancers (which close first).
keepalive = _whole_number("WEB_KEEPALIVE_SECONDS", 75)
# gthread workers report to the arbiter from their main loop, so a long `wait` is not a
# hung worker; this only catches a worker whose main loop is stuck.
timeout = 60
graceful_timeout = 30
# The longest request line gunicorn allows (its default is 4094): a list URL with many
# filters reaches the API, which answers 400 naming a bad one, rather than gunicorn's HTML 414.
limit_request_line = 8190
# Waiting connections queue here (bounded) rather than being refused.
backlog = 2048
accesslog = "-" if os.environ.get("WEB_ACCESS_LOG", "") in {"1", "true", "yes"} else None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn 27's runtime control socket (one per user's home) is not needed, and two
# servers of one user (a test beside `make run`) would fight over it.
control_socket_disable = True
# Connections from the web processes carry this name in pg_stat_activity, and take their
# database connections from a bounded pool (automation/settings.py, "Database").
raw_env = ["AUTOMATION_PROCESS=web"]


def on_starting(server: object) -> None:
    """Read the settings once in the arbiter: a bad or missing variable stops gunicorn with
    one line naming it, instead of a traceback from every worker it would start."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
    os.environ["AUTOMATION_PROCESS"] = "web"
    from automation.startup import check_settings

    check_settings()


def post_worker_init(worker: object) -> None:
    """The app is loaded: freeze what it loaded (Django, DRF, the engine) out of the garbage
    collector's reach, so that a full collection walks only what requests made since; it
    would stall the request it falls on for 40 to 70 ms (measured here)."""
    gc.collect()
    gc.freeze()


if (os.environ.get("LOG_FORMAT") or "").strip().lower() == "json":
    # gunicorn's own lines (start, workers, access log) as JSON too, like Django's.
    _json_handler = {
        "class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr",
    }
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "automation.logs.JsonFormatter"}},
        "handlers": {"console": _json_handler},
        "root": {"handlers": ["console"], "level": loglevel.upper()},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
