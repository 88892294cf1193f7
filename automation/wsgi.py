"""WSGI entry point for the web process."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from automation.chunked import sized_bodies
from automation.startup import check_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
os.environ.setdefault("AUTOMATION_PROCESS", "web")  # pooled database connections (settings)
check_settings()


def _largest_body() -> int:
    """The largest body any route accepts: the API's, or a webhook's if that is larger."""
    return max(
        int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0),
        int(settings.AUTOMATION["WEBHOOK_MAX_BODY_BYTES"]),
    )


application = sized_bodies(get_wsgi_application(), _largest_body)
