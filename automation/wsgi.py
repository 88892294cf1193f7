"""WSGI entry point for the web process."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from automation.startup import check_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
os.environ.setdefault("AUTOMATION_PROCESS", "web")  # pooled database connections (settings)
check_settings()
application = get_wsgi_application()
