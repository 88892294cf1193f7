"""SCP: copy one file to or from a host over SSH (paramiko's SFTP, the protocol OpenSSH's
own scp uses since 9.0). Connecting, authentication and host keys work as in the SSH
connector, whose inputs (host or hostname, port, username, password or key, hostkey) this
type shares.

The worker's own files are never read or written: an upload sends `content` given by the
flow, a download returns the file's content in the output.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import time
from typing import Any, ClassVar

import paramiko  # type: ignore[import-untyped]

from . import ssh
from .base import ConnectorError, InputError

MAX_DOWNLOAD_BYTES = 20_000_000  # a download lands in output_value (JSON in the database)
_CHUNK = 65536


class Connector(ssh.Connector):
    """`upload`: writes `content` (text) or `content_base64` to `dst`; output `path`, `size`.
    `download`: reads `src`; output `path`, `size`, `content` (text) or, for a file that is
    not UTF-8 text, `content_base64`."""

    type_name = "SCP"
    inputs = {
        **{name: ssh.Connector.inputs[name] for name in (
            "host", "hostname", "port", "username", "password", "key", "passphrase",
            "hostkey")},
        "command": "upload or download",
        "src": "for download: the remote file's path",
        "dst": "for upload: the remote file's path (its directory must exist)",
        "content": "for upload: the file's text (written as UTF-8)",
        "content_base64": "for upload: the file's bytes, base64-encoded",
        "mode": "for upload: the file's permissions, e.g. '0640' (default: the server's)",
        "timeout": "seconds the whole call may take, connecting included (default 300)",
    }
    required: ClassVar[tuple[str | tuple[str, ...], ...]] = (
        ("host", "hostname"), "username", ("password", "key"), "command",
    )
    exclusive = (("host", "hostname"), ("content", "content_base64"))
    default_timeout = 300.0

    def call(self) -> dict[str, Any]:
        command = str(self.get("command")).lower()
        if command not in ("upload", "download"):
            raise InputError(f"command must be upload or download, not {command!r}")
        path = self._path("dst" if command == "upload" else "src")
        data = self._upload_bytes() if command == "upload" else b""
        mode = self._mode()
        host, port, username = self.target()
        target = f"{username}@{host}:{port}"
        timeout = self.timeout()
        deadline = time.monotonic() + timeout
        step = min(timeout, ssh._CONNECT_TIMEOUT)
        client = paramiko.SSHClient()
        try:
            self.connect_client(client, host, port, username, step)
            with self.interruptible():
                sftp = client.open_sftp()
            try:
                channel = sftp.get_channel()
                if channel is not None:  # every read and write waits at most this long
                    channel.settimeout(max(0.1, deadline - time.monotonic()))
                with self.interruptible():
                    if command == "upload":
                        output = self._upload(sftp, path, data, mode, deadline, target)
                    else:
                        output = self._download(sftp, path, deadline, target)
            finally:
                sftp.close()
        except FileNotFoundError:
            raise ConnectorError(f"SCP {target}: no such file or directory: {path}") from None
        except PermissionError:
            raise ConnectorError(f"SCP {target}: permission denied: {path}") from None
        except (paramiko.SSHException, OSError) as exc:
            raise self.failure(exc, target, step) from None
        finally:
            client.close()
        self.log(f"SCP {target}: {command}ed {path} ({output['size']} bytes)")
        return output

    def _upload(self, sftp: paramiko.SFTPClient, path: str, data: bytes, mode: int | None,
                deadline: float, target: str) -> dict[str, Any]:
        with sftp.open(path, "wb") as remote:
            for start in range(0, len(data), _CHUNK):
                _check_deadline(deadline, target, self.timeout())
                remote.write(data[start:start + _CHUNK])
        if mode is not None:
            sftp.chmod(path, mode)
        return {"path": path, "size": len(data)}

    def _download(self, sftp: paramiko.SFTPClient, path: str, deadline: float,
                  target: str) -> dict[str, Any]:
        size = sftp.stat(path).st_size or 0
        if size > MAX_DOWNLOAD_BYTES:
            raise ConnectorError(f"SCP {target}: {path} has {size} bytes; at most "
                                 f"{MAX_DOWNLOAD_BYTES} can be downloaded into an output")
        data = bytearray()
        with sftp.open(path, "rb") as remote:
            while chunk := remote.read(_CHUNK):
                _check_deadline(deadline, target, self.timeout())
                data += chunk
                if len(data) > MAX_DOWNLOAD_BYTES:
                    raise ConnectorError(f"SCP {target}: {path} grew past "
                                         f"{MAX_DOWNLOAD_BYTES} bytes while it was read")
        output: dict[str, Any] = {"path": path, "size": len(data)}
        try:
            output["content"] = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            output["content_base64"] = base64.b64encode(bytes(data)).decode()
        return output

    # --- inputs -----------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        raw = self.get(name)
        if not isinstance(raw, str) or not raw.strip():
            raise InputError(f"the SCP connector needs the input {name!r} (the remote path)")
        return posixpath.normpath(raw.strip())

    def _upload_bytes(self) -> bytes:
        if self.given("content_base64"):
            try:
                return base64.b64decode(str(self.get("content_base64")), validate=True)
            except (binascii.Error, ValueError):
                raise InputError("content_base64 is not base64") from None
        content = self.values.get("content")
        if not isinstance(content, str):
            raise InputError("upload needs content (text) or content_base64")
        return content.encode("utf-8")

    def _mode(self) -> int | None:
        raw = self.get("mode")
        if raw is None:
            return None
        try:
            mode = int(str(raw), 8) if isinstance(raw, str) else int(raw)
        except ValueError:
            raise InputError(f"mode must be octal permissions like '0640', not {raw!r}") from None
        if not 0 <= mode <= 0o7777:
            raise InputError(f"mode must be octal permissions like '0640', not {raw!r}")
        return mode


def _check_deadline(deadline: float, target: str, timeout: float) -> None:
    if time.monotonic() > deadline:
        raise ConnectorError(f"SCP {target}: timed out after {timeout:g} s")
