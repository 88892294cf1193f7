"""Messages between a worker and its flow host: length-prefixed JSON over a Unix socket.

JSON, never pickle: the engine decodes what the host sends, and the host runs untrusted
code. Every message is a dict with an "op"; the worker bounds what it reads (`max_bytes`).
"""

from __future__ import annotations

import json
import select
import socket
import struct
from typing import Any

from ..values import plain

_HEADER = struct.Struct("!I")


class ChannelClosed(Exception):
    """The other side closed its end (or died)."""


class MessageTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a message of {size} bytes, over the limit of {limit} bytes")
        self.size, self.limit = size, limit


def encode(message: dict[str, Any]) -> bytes:
    """The message as one frame; TypeError or ValueError for what JSON cannot hold."""
    body = json.dumps(message, default=plain, ensure_ascii=True, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.sendall(encode(message))
    except (BrokenPipeError, ConnectionResetError):
        raise ChannelClosed() from None


def receive(
    sock: socket.socket, *, timeout: float | None = None, max_bytes: int | None = None
) -> dict[str, Any] | None:
    """The next message, or None if none began within `timeout` seconds."""
    if timeout is not None:
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return None
    (size,) = _HEADER.unpack(_read(sock, _HEADER.size))
    if max_bytes is not None and size > max_bytes:
        raise MessageTooLarge(size, max_bytes)
    message = json.loads(_read(sock, size))
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message


def _read(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise ChannelClosed()
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
