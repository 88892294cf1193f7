"""Settings of the automation engine.

This is the only module that reads the environment. Every variable has a default that
runs the engine on the embedded default (a SQLite file and a Redis started by `make run`),
and a bad value stops the start with a message that names the variable.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from automation.embedded import embedded_redis_url, generated_secret, private_dir

BASE_DIR = Path(__file__).resolve().parent.parent
# Private to the engine's user (0700; see automation/embedded.py): it holds the secrets.
VAR_DIR = Path(os.environ.get("AUTOMATION_VAR_DIR") or BASE_DIR / "var")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no).")


def _env_number(name: str, default: float, *, minimum: float = 0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={os.environ.get(name)!r} must be one of: {', '.join(choices)}.")
    return value


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = _env_number(name, default, minimum=minimum)
    if value != int(value):
        raise ImproperlyConfigured(f"{name}={os.environ.get(name)!r} is not a whole number.")
    return int(value)


def _dev_secret(filename: str, generate: Callable[[], str] | None = None) -> str:
    """A secret generated once for the embedded default and kept in var/ (file 0600, var/ 0700)."""
    return generated_secret(VAR_DIR, filename, generate)


DEBUG = _env_bool("DEBUG", False)
# Outside the embedded default (DATABASE_URL names a non-SQLite database and DEBUG is off)
# SECRET_KEY must be given: a generated one would differ between hosts and sign nothing safely.
_EMBEDDED_DEFAULT = DEBUG or urlparse(os.environ.get("DATABASE_URL") or "sqlite:").scheme in {
    "", "sqlite",
}
if "pytest" in sys.modules and not os.environ.get("SECRET_KEY"):
    # The test suite runs on a server database like production but is not one: it uses the
    # embedded default's generated key, passed on to the worker processes it starts.
    os.environ["SECRET_KEY"] = _dev_secret("secret_key")
if not os.environ.get("SECRET_KEY") and not _EMBEDDED_DEFAULT:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set: it is required when DATABASE_URL names a server database and "
        "DEBUG is off (make one with `python -c \"import secrets; print(secrets.token_urlsafe(50))\"`)."
    )
SECRET_KEY = os.environ.get("SECRET_KEY") or _dev_secret("secret_key")


def _fernet_keys(raw: str | None) -> list[str]:
    """FIELD_ENCRYPTION_KEY: one or more comma-separated Fernet keys, newest first.

    The first key encrypts; all of them decrypt, so a new key can be put in front and
    `manage.py rotate_encryption_key` re-encrypts the stored secrets with it. Unset, a key
    is generated once for the embedded default and kept in var/field_encryption_key.
    """
    import base64
    import binascii

    if not raw or not raw.strip():
        raw = _dev_secret(
            "field_encryption_key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        )
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    for number, key in enumerate(keys, 1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEY: key {number} is not a Fernet key (32 url-safe "
                "base64-encoded bytes; make one with `python -c \"from cryptography.fernet "
                "import Fernet; print(Fernet.generate_key().decode())\"`)."
            )
    return keys


FIELD_ENCRYPTION_KEY = _fernet_keys(os.environ.get("FIELD_ENCRYPTION_KEY"))
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens stored as hashes, revocable
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as local static files (no CDN)
    "django_celery_beat",
    "executions",
    "connectors",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the web process itself, before sessions and auth are touched.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A database that cannot be reached (or a full connection pool) answers 503.
    "executions.api.errors.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "executions.api.auth.AdminLoginThrottleMiddleware",  # password guessing on /admin/login/
]

ROOT_URLCONF = "automation.urls"
WSGI_APPLICATION = "automation.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# --- Database -----------------------------------------------------------------------------
# Which process this is: gunicorn's configuration says "web"; celery's command line says
# worker or beat. It names the database connections (pg_stat_activity's application_name,
# unless AUTOMATION_DB_APPLICATION_NAME says otherwise) and decides how they are held:
# - web: a pool per process of at most AUTOMATION_WEB_DB_POOL_SIZE connections, shared by
#   its threads; a request that finds it full waits up to AUTOMATION_DB_POOL_TIMEOUT seconds,
#   then is answered 503 with Retry-After (executions/api/errors.py);
# - worker and beat: one persistent connection per process (and per guard thread): their
#   number is fixed by the worker's concurrency, and reconnecting per task was slow.
def _process_role() -> str:
    role = os.environ.get("AUTOMATION_PROCESS", "")
    if role:
        return role
    argv = " ".join(sys.argv[:4])
    if "celery" in argv:
        return "worker" if " worker" in argv else "beat" if " beat" in argv else "celery"
    return "manage"


PROCESS_ROLE = _process_role()
WEB_DB_POOL_SIZE = _env_int("AUTOMATION_WEB_DB_POOL_SIZE", 8, minimum=1)
DB_POOL_TIMEOUT = _env_number("AUTOMATION_DB_POOL_TIMEOUT", 10.0, minimum=0.1)


# Unset, the engine runs on a SQLite file in WAL mode: web, worker and beat write at once
# without "database is locked", and WAL with synchronous=NORMAL is fast for this bookkeeping.
def _database(url: str | None) -> dict[str, Any]:
    if not url:
        private_dir(VAR_DIR)
        url = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=None))
    except Exception as exc:  # dj_database_url raises several types for one cause
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine.endswith("sqlite3"):
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
            ),
        }
        # Tests that cross the queue need a file the worker process can open too.
        config["TEST"] = {"NAME": str(Path(config["NAME"]).with_suffix(".test.sqlite3"))}
    elif engine.endswith("postgresql"):
        options = config.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", 10)
        options.setdefault(
            "application_name",
            os.environ.get("AUTOMATION_DB_APPLICATION_NAME") or f"automation-{PROCESS_ROLE}",
        )
        if PROCESS_ROLE == "web":
            # Django returns the connection to the pool at the end of each request (so no
            # persistent connections: CONN_MAX_AGE must be 0 with a pool).
            config["CONN_MAX_AGE"] = 0
            options["pool"] = {
                "min_size": 1,
                "max_size": WEB_DB_POOL_SIZE,
                "timeout": DB_POOL_TIMEOUT,
                "max_idle": 300,
            }
        else:
            config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": _database(os.environ.get("DATABASE_URL"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Redis and Celery ---------------------------------------------------------------------
EMBEDDED_REDIS_PORT = _env_int("AUTOMATION_EMBEDDED_REDIS_PORT", 6399, minimum=1)
# Unset: the embedded Redis that scripts/dev.py starts, on loopback and with a password
# generated into var/redis_password, so that flow code (another user, isolation.py) cannot
# talk to the broker directly. Never print REDIS_URL or BROKER_URL whole (embedded.masked_url).
REDIS_URL = os.environ.get("REDIS_URL") or embedded_redis_url(VAR_DIR, EMBEDDED_REDIS_PORT)
if urlparse(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix:// (got a URL starting with "
        f"{urlparse(REDIS_URL).scheme!r}://)."  # never the password
    )

# The Celery broker: Redis (the default, REDIS_URL) or RabbitMQ (amqp://). The notices of
# executions/notify.py stay on REDIS_URL whichever broker carries the messages.
BROKER_URL = os.environ.get("BROKER_URL") or REDIS_URL
BROKER_KIND = {"redis": "redis", "rediss": "redis", "unix": "redis", "amqp": "amqp", "amqps": "amqp",
               "pyamqp": "amqp"}.get(urlparse(BROKER_URL).scheme, "")
if not BROKER_KIND:
    raise ImproperlyConfigured(
        "BROKER_URL must start with redis://, rediss://, unix://, amqp:// or amqps:// "
        f"(got a URL starting with {urlparse(BROKER_URL).scheme!r}://)."  # never the password
    )
CELERY_BROKER_URL = BROKER_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Celery's Django fixup closes the database connection around every task unless told to
# reuse it: reconnecting was more than half of a trivial execution's time on a worker.
# A connection broken meanwhile (a database restart) is retried by the task and the runner.
CELERY_DB_REUSE_MAX = _env_int("AUTOMATION_DB_REUSE_MAX", 1000, minimum=0)
CELERY_TASK_IGNORE_RESULT = True  # outcomes live on the execution row, not in a result backend
CELERY_TASK_ACKS_LATE = True  # a message is acked after its execution ended, see README
CELERY_TASK_REJECT_ON_WORKER_LOST = False  # the reconciler, not a redelivery, ends lost work
CELERY_WORKER_PREFETCH_MULTIPLIER = _env_int("AUTOMATION_WORKER_PREFETCH", 1, minimum=1)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = _env_int("AUTOMATION_WORKER_MAX_MEMORY_KB", 512_000, minimum=0) or None
CELERY_WORKER_SEND_TASK_EVENTS = _env_bool("AUTOMATION_WORKER_EVENTS", False)
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if BROKER_KIND == "redis":
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than any message waits unacked in a healthy worker; a redelivery is harmless
        # anyway, because the claim lets only one delivery run an execution.
        "visibility_timeout": _env_int("AUTOMATION_VISIBILITY_TIMEOUT", 3600, minimum=1),
        "socket_timeout": 10,
        "socket_connect_timeout": 10,
        # Execution priority (executions.broker.message_priority): one Redis list per step and
        # queue; a worker pops step 0 (high) of all its queues before 3 (normal) before 6 (low).
        "priority_steps": [0, 3, 6],
        # Within a step, the queues in the order the worker lists them (-Q), not round robin.
        "queue_order_strategy": "priority",
    }
else:
    # RabbitMQ keeps priorities only in queues declared with x-max-priority; Celery adds it to
    # every queue it declares, the default group's and those task_create_missing_queues makes.
    # Higher is delivered first there (executions.broker.message_priority maps 9/5/1).
    CELERY_TASK_QUEUE_MAX_PRIORITY = 9
    CELERY_TASK_DEFAULT_PRIORITY = 5  # a message sent without one counts as "normal", not lowest
    CELERY_BROKER_CONNECTION_TIMEOUT = 10
# django-celery-beat's DatabaseScheduler, with exact fire times for schedules (DST, no drift).
CELERY_BEAT_SCHEDULER = "executions.schedules:BeatScheduler"
CELERY_TIMEZONE = os.environ.get("TIME_ZONE", "UTC")

# --- The engine's own knobs ---------------------------------------------------------------
AUTOMATION: dict[str, Any] = {
    # How long a waiter sleeps on Redis before it re-reads the database anyway.
    "SAFETY_POLL_SECONDS": _env_number("AUTOMATION_SAFETY_POLL_SECONDS", 2.0, minimum=0.05),
    # How often a worker process records that its executions are alive.
    "HEARTBEAT_SECONDS": _env_number("AUTOMATION_HEARTBEAT_SECONDS", 5.0, minimum=0.1),
    # A RUNNING or WAITING execution whose heartbeat is older than this is "worker lost".
    "WORKER_LOST_SECONDS": _env_number("AUTOMATION_WORKER_LOST_SECONDS", 60.0, minimum=1),
    # A PENDING execution older than this has its Celery message sent again.
    "PENDING_RESEND_SECONDS": _env_number("AUTOMATION_PENDING_RESEND_SECONDS", 120.0, minimum=1),
    # After SIGTERM, a worker's executions get this long to finish before they end in error.
    "SHUTDOWN_GRACE_SECONDS": _env_number("AUTOMATION_SHUTDOWN_GRACE_SECONDS", 30.0, minimum=0),
    # How often beat runs the reconciler.
    "RECONCILE_SECONDS": _env_number("AUTOMATION_RECONCILE_SECONDS", 15.0, minimum=1),
    # The longest `wait` the API accepts on POST /api/executions/.
    "MAX_API_WAIT_SECONDS": _env_number("AUTOMATION_MAX_API_WAIT_SECONDS", 300.0, minimum=0),
    # A start's Idempotency-Key (API and webhooks) counts this long after its first use.
    "IDEMPOTENCY_SECONDS": _env_number("AUTOMATION_IDEMPOTENCY_SECONDS", 86400.0, minimum=1),
    # An execution tree's limits: how deep children may nest below a root, and how many
    # executions one root may start below it in all (a flow that calls itself stops there).
    "MAX_DEPTH": _env_int("AUTOMATION_MAX_DEPTH", 20, minimum=1),
    "MAX_DESCENDANTS": _env_int("AUTOMATION_MAX_DESCENDANTS", 1000, minimum=1),
    # A schedule's fire time that beat reaches later than this is skipped, not caught up.
    "SCHEDULE_MISFIRE_SECONDS": _env_number("AUTOMATION_SCHEDULE_MISFIRE_SECONDS", 300.0, minimum=1),
    # What `system.get_env_name()` answers a flow: the name of this installation.
    "ENV_NAME": os.environ.get("AUTOMATION_ENV_NAME", "").strip() or "default",
    # Worker group of executions whose flow names none.
    "DEFAULT_QUEUE": os.environ.get("AUTOMATION_DEFAULT_QUEUE", "default"),
    # The largest file (system.file(name).save(...), /api/files/); larger ones are refused
    # (ENDED_ERROR in a flow, 413 in the API).
    "MAX_FILE_BYTES": _env_int("AUTOMATION_MAX_FILE_BYTES", 10_485_760, minimum=1),
    # The largest body a webhook call may send; larger ones are refused with 413.
    "WEBHOOK_MAX_BODY_BYTES": _env_int("AUTOMATION_WEBHOOK_MAX_BODY_BYTES", 1_048_576, minimum=1),
    # How long a synchronous webhook call waits for its execution before answering 202.
    "WEBHOOK_WAIT_SECONDS": _env_number("AUTOMATION_WEBHOOK_WAIT_SECONDS", 30.0, minimum=0),
    # Ended executions older than this many days are deleted daily by beat (0 = keep all).
    "RETENTION_DAYS": _env_int("AUTOMATION_RETENTION_DAYS", 0, minimum=0),
    # A flow's log: one entry's text is cut at LOG_ENTRY_MAX_BYTES, and once an execution's
    # log holds LOG_MAX_BYTES further entries are dropped (both with a note saying so).
    "LOG_ENTRY_MAX_BYTES": _env_int("AUTOMATION_LOG_ENTRY_MAX_BYTES", 65_536, minimum=256),
    "LOG_MAX_BYTES": _env_int("AUTOMATION_LOG_MAX_BYTES", 2_097_152, minimum=1024),
    # A flow waiting this long for a message form's answer parks: it frees its worker
    # process and is resumed, replaying its earlier calls, when answered (0 = only when its
    # worker stops or dies). See executions/parking.py.
    "PARK_AFTER_SECONDS": _env_number("AUTOMATION_PARK_AFTER_SECONDS", 60.0, minimum=0),
    # The flow started when an execution of a flow that names no `error_handler` ends
    # ENDED_ERROR (executions/engine/error_handlers.py); empty = none.
    "DEFAULT_ERROR_HANDLER": os.environ.get("AUTOMATION_DEFAULT_ERROR_HANDLER", "").strip(),
    # Callers of /metrics from outside loopback send `Authorization: Bearer <this>`.
    "METRICS_TOKEN": os.environ.get("AUTOMATION_METRICS_TOKEN", ""),
    # Flow code runs in a host process of its own (executions/engine/hosts.py,
    # docs/README-security.md). "full": as FLOW_USER, which a worker running as root
    # becomes for it; where that is not possible flows are refused, saying why. "none":
    # as the worker's own user, for a single trusted user only.
    "FLOW_ISOLATION": _env_choice("AUTOMATION_FLOW_ISOLATION", "full", ("full", "none")),
    "FLOW_USER": os.environ.get("AUTOMATION_FLOW_USER", "nobody"),
    # Names of the worker's environment variables a flow may read (PATH, LANG, TZ always).
    "FLOW_ENV": [n for n in re.split(r"[,\s]+", os.environ.get("AUTOMATION_FLOW_ENV", "")) if n],
    "FLOW_MAX_MEMORY_MB": _env_int("AUTOMATION_FLOW_MAX_MEMORY_MB", 1024, minimum=64),
    "FLOW_MAX_PROCESSES": _env_int("AUTOMATION_FLOW_MAX_PROCESSES", 256, minimum=8),
    "FLOW_MAX_OPEN_FILES": _env_int("AUTOMATION_FLOW_MAX_OPEN_FILES", 1024, minimum=32),
    # A host that cleaned up after its execution runs up to this many of the same user and
    # mode (1: a new host for every execution).
    "FLOW_HOST_MAX_RUNS": _env_int("AUTOMATION_FLOW_HOST_MAX_RUNS", 100, minimum=1),
    # A cancelled or timed-out flow that goes on this long after being interrupted has its
    # host killed, with everything it started (AUTOMATION_FLOW_CANCEL_GRACE_SECONDS is the
    # older name, still read).
    "CANCEL_GRACE_SECONDS": _env_number(
        "AUTOMATION_CANCEL_GRACE_SECONDS",
        _env_number("AUTOMATION_FLOW_CANCEL_GRACE_SECONDS", 5.0, minimum=0.1), minimum=0.1,
    ),
}

# --- Django REST framework ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so that an anonymous call is answered 401 with `WWW-Authenticate: Token`.
        # knox's, reading only the presented token per call (executions/api/authentication.py).
        "executions.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies only (415 otherwise), as the schema says: a form or multipart body that
    # parses to nothing would change nothing and answer 200 as if it had.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "executions.api.pagination.Page",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "executions.api.filters.StrictFilterBackend",  # refuses what it cannot read
        "executions.api.filters.ListOrdering",
    ],
    "DEFAULT_SCHEMA_CLASS": "executions.api.schema.ApiAutoSchema",  # documents the error answers
    # Every error is JSON naming the field (or `detail`), never an HTML page.
    "EXCEPTION_HANDLER": "executions.api.errors.exception_handler",
    # Password attempts (POST /api/auth/token/ and the admin login) per address and username.
    "DEFAULT_THROTTLE_RATES": {"login": os.environ.get("AUTOMATION_LOGIN_RATE", "10/minute")},
    # Proxies in front of the engine whose X-Forwarded-For is trusted (0: use the peer
    # address, so a client cannot dodge the throttle by sending its own X-Forwarded-For).
    "NUM_PROXIES": _env_int("AUTOMATION_NUM_PROXIES", 0, minimum=0),
}
# API tokens (django-rest-knox): stored as SHA-512 digests, revoked by deleting the row.
# 0 hours = tokens do not expire (automation clients keep theirs until it is revoked).
_TOKEN_TTL_HOURS = _env_number("AUTOMATION_API_TOKEN_TTL_HOURS", 0, minimum=0)
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=_TOKEN_TTL_HOURS) if _TOKEN_TTL_HOURS else None,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Automation engine API",
    "DESCRIPTION": "Start and watch executions of flows, scripts and connections.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request and answer bodies as separate components: an answer may hold what a request
    # may not send (a webhook's `flow` is null once its flow was deleted, read-only fields).
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "executions.api.schema.no_nul_in_query_text",
    ],
    # The docs pages load their JavaScript from drf_spectacular_sidecar's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = CELERY_TIMEZONE
USE_I18N = True
USE_TZ = True

# --- HTTPS (production): AUTOMATION_HTTPS=1 when the engine is reached over HTTPS -------
if _env_bool("AUTOMATION_HTTPS", False):
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _env_int("AUTOMATION_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("AUTOMATION_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("AUTOMATION_HSTS_PRELOAD", True)
    if _env_bool("AUTOMATION_BEHIND_PROXY", False):  # TLS ends at a proxy that sets this
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "static"))
# whitenoise serves what `collectstatic` wrote (make run, the Dockerfile): gzip-compressed,
# with content-hashed names, so it can tell browsers to cache them for a year.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = _env_int("AUTOMATION_MAX_BODY_BYTES", 2_621_440, minimum=1024)

# LOG_FORMAT=json: one JSON object per line (python-json-logger) for a log stack, with the
# execution_id, flow and status of the execution a line is about (automation/logs.py).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower() or "text"
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be text or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s"},
        "json": {"()": "automation.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
