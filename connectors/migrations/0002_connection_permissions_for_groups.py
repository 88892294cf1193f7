"""Grant the connection permissions to the API groups, whichever app migrated first."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def grant(apps: Any, schema_editor: Any) -> None:
    from django.contrib.auth.management import create_permissions

    try:
        from executions.permissions import sync_groups
    except ImportError:  # pragma: no cover - groups not part of this tree
        return
    # On a fresh database permissions are made only after all migrations ran: make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_groups(apps)  # only adds, so running it again after executions' own call is harmless


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
