"""Encryption of connection secrets at rest, with the keys of FIELD_ENCRYPTION_KEY.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) through MultiFernet: the first
key encrypts, every key decrypts, and `rotate` re-encrypts a token with the first key.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet as _Fernet
from cryptography.fernet import InvalidToken, MultiFernet
from django.conf import settings


class SecretsUnreadable(ValueError):
    """Stored secrets cannot be decrypted with any key of FIELD_ENCRYPTION_KEY."""


@lru_cache(maxsize=8)
def _multi(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_Fernet(k.encode()) for k in keys])


def fernet() -> MultiFernet:
    """The MultiFernet of the keys in force (re-read, so a changed setting applies at once)."""
    keys = settings.FIELD_ENCRYPTION_KEY
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    if not keys:
        raise SecretsUnreadable("FIELD_ENCRYPTION_KEY holds no key")
    return _multi(tuple(keys))


def encrypt(value: dict[str, Any]) -> str:
    """A Fernet token (text) of the JSON of `value`."""
    return fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt(token: str) -> dict[str, Any]:
    """The dict that `encrypt` made; SecretsUnreadable if no key in force opens it."""
    if not token:
        return {}
    try:
        plain = fernet().decrypt(token.encode())
    except InvalidToken:
        raise SecretsUnreadable(
            "the stored secrets cannot be decrypted with any key of FIELD_ENCRYPTION_KEY "
            "(was the key that encrypted them removed?)"
        ) from None
    value = json.loads(plain)
    return value if isinstance(value, dict) else {}


def rotate(token: str) -> str:
    """The same secrets, encrypted with the first key."""
    if not token:
        return token
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretsUnreadable(
            "a stored token cannot be decrypted with any key of FIELD_ENCRYPTION_KEY"
        ) from None
