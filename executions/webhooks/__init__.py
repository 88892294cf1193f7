"""Webhooks: URLs other systems call to start a flow (see `calls` for the whole contract)."""

from __future__ import annotations

from .calls import (
    KEY_HEADER,
    CallRefused,
    call,
    hash_key,
    key_matches,
    new_key,
    orphaned,
    rotate_key,
)

__all__ = [
    "KEY_HEADER", "CallRefused", "call", "hash_key", "key_matches", "new_key", "orphaned",
    "rotate_key",
]
