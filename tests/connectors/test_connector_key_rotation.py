"""Rotating FIELD_ENCRYPTION_KEY: put a new key first, re-encrypt, drop the old key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.db import transaction

from connectors.models import Connection, UnreadableSecrets

pytestmark = pytest.mark.django_db

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def raw(pk: int) -> bytes:
    with db.cursor() as cursor:
        cursor.execute("SELECT secrets FROM connectors_connection WHERE id = %s", [pk])
        return str(cursor.fetchone()[0]).encode()


def test_rotation_re_encrypts_every_secret_with_the_new_key(settings, capsys):
    settings.FIELD_ENCRYPTION_KEY = [OLD]
    conn = Connection.objects.create(name="db", connector_type="SQLPG",
                                     secrets={"password": "rotate-me"})
    Fernet(OLD.encode()).decrypt(raw(conn.pk))

    settings.FIELD_ENCRYPTION_KEY = [NEW, OLD]
    assert Connection.objects.get(pk=conn.pk).secrets == {"password": "rotate-me"}  # both open
    call_command("rotate_encryption_key")
    assert "re-encrypted the secrets of 1 row(s)" in capsys.readouterr().out

    assert b"rotate-me" in Fernet(NEW.encode()).decrypt(raw(conn.pk))
    with pytest.raises(InvalidToken):
        Fernet(OLD.encode()).decrypt(raw(conn.pk))
    settings.FIELD_ENCRYPTION_KEY = [NEW]  # the old key can go now
    assert Connection.objects.get(pk=conn.pk).secrets == {"password": "rotate-me"}


def test_secrets_without_their_key_are_reported_not_lost(settings):
    settings.FIELD_ENCRYPTION_KEY = [OLD]
    conn = Connection.objects.create(name="db", connector_type="SQLPG",
                                     secrets={"password": "keep-me"})
    before = raw(conn.pk)
    settings.FIELD_ENCRYPTION_KEY = [NEW]
    loaded = Connection.objects.get(pk=conn.pk)
    assert isinstance(loaded.secrets, UnreadableSecrets)
    assert "cannot be decrypted with any key of FIELD_ENCRYPTION_KEY" in loaded.secrets.error
    with pytest.raises(CommandError, match="nothing changed"):
        call_command("rotate_encryption_key")
    refused = pytest.raises(ValueError, match="refusing to overwrite secrets that cannot be read")
    with refused, transaction.atomic():
        loaded.save()
    assert raw(conn.pk) == before
