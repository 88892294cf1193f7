"""`manage.py rotate_encryption_key`: re-encrypt every stored secret with the first key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from connectors import crypto
from connectors.models import Connection, ExecutionSecret


class Command(BaseCommand):
    help = (
        "Re-encrypt all connection secrets with the first key of FIELD_ENCRYPTION_KEY. "
        "Put the new key first (NEW,OLD), run this, then drop OLD."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        try:
            with transaction.atomic():
                for model in (Connection, ExecutionSecret):
                    total += self._rotate(model)
        except crypto.SecretsUnreadable as exc:
            raise CommandError(f"nothing changed: {exc}") from None
        self.stdout.write(f"re-encrypted the secrets of {total} row(s) with the first key")

    def _rotate(self, model: Any) -> int:
        # Raw tokens: the field would decrypt on read and encrypt again on write, which
        # works too, but MultiFernet.rotate keeps each token's original timestamp.
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(model._meta.get_field("secrets").column)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, {column} FROM {table} ORDER BY id")
            rows = cursor.fetchall()
            for pk, token in rows:
                if not token:
                    continue
                cursor.execute(
                    f"UPDATE {table} SET {column} = %s WHERE id = %s",
                    [crypto.rotate(token), pk],
                )
        return len(rows)
