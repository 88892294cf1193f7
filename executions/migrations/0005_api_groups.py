"""The three groups of the API and the admin: Viewers, Developers, Operators."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def make_groups(apps: Any, schema_editor: Any) -> None:
    from django.contrib.auth.management import create_permissions

    from executions.permissions import sync_groups

    # On a fresh database permissions are made only after all migrations ran: make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0004_webhook"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(make_groups, migrations.RunPython.noop)]
