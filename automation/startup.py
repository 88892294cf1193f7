"""One readable line for a bad configuration, instead of a traceback from every process.

Each entry point (manage.py, the Celery app, gunicorn's arbiter, the WSGI module) reads the
settings through `check_settings` first: automation/settings.py raises ImproperlyConfigured
naming the variable and how to fix it, and this prints that message once and exits.
"""

from __future__ import annotations

import os
import sys


def check_settings() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018  (reading one setting imports them all)
    except ImproperlyConfigured as exc:
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
