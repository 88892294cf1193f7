#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
    from django.core.management import execute_from_command_line

    from automation.startup import check_settings

    check_settings()  # a bad setting: one line naming it, not a traceback

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
