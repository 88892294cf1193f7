"""SSH: run a script or a list of commands on a host with paramiko; retcode, stdout, stderr."""

from __future__ import annotations

import base64
import binascii
import io
import select
import socket
import time
from typing import Any

import paramiko  # type: ignore[import-untyped]

from .base import Connector as BaseConnector
from .base import ConnectorError, InputError

_KEY_CLASSES: tuple[type[paramiko.PKey], ...] = (
    paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey,
)
_CONNECT_TIMEOUT = 30.0  # at most this long for TCP, banner and authentication each


class Connector(BaseConnector):
    """Runs `script` (one shell script) or `commands` (one after another, stopping at the
    first whose exit code is not expected). Output `retcode, stdout, stderr` of the script or
    the last command run, and for `commands` also `results` per command."""

    type_name = "SSH"
    inputs = {
        "host": "host name or address",
        "port": "port (default 22)",
        "username": "user name",
        "password": "password (or give key)",
        "key": "private key text (OpenSSH or PEM; Ed25519, ECDSA or RSA)",
        "passphrase": "passphrase of an encrypted key",
        "hostkey": "the server's public host key ('ssh-ed25519 AAAA...', known_hosts lines); "
                   "checked when given",
        "script": "a shell script to run",
        "commands": "a list of commands to run one after another",
        "expected_retcode": "exit code(s) that count as success (default 0), or 'any'",
        "timeout": "seconds the whole call may take, connecting included (default 600)",
    }
    required = ("host", "username", ("password", "key"), ("script", "commands"))
    exclusive = (("script", "commands"),)
    secret_inputs = frozenset({"key", "passphrase"})
    default_timeout = 600.0

    def call(self) -> dict[str, Any]:
        host, port = str(self.get("host")), int(self.get("port", 22))
        username = str(self.get("username"))
        commands = self._commands()
        expected = self._expected()
        timeout = self.timeout()
        deadline = time.monotonic() + timeout
        target = f"{username}@{host}:{port}"
        client = paramiko.SSHClient()
        results: list[dict[str, Any]] = []
        step = min(timeout, _CONNECT_TIMEOUT)
        try:
            self._trust(client, host, port)
            with self.interruptible():
                client.connect(
                    host, port=port, username=username,
                    password=str(self.get("password")) if self.given("password") else None,
                    pkey=self._key(), timeout=step, banner_timeout=step, auth_timeout=step,
                    channel_timeout=step, allow_agent=False, look_for_keys=False,
                )
            if not self.given("hostkey"):
                self._log_unchecked(client, target)
            for command in commands:
                result = self._run(client, command, deadline, timeout, results, target)
                results.append(result)
                if expected is not None and result["retcode"] not in expected:
                    break
        except paramiko.BadHostKeyException as exc:
            raise ConnectorError(
                f"SSH {target}: the server's host key is not the one given in hostkey "
                f"(it offered {exc.key.get_name()} {exc.key.get_base64()})"
            ) from None
        except paramiko.AuthenticationException:
            raise ConnectorError(f"SSH {target}: authentication failed") from None
        except (paramiko.SSHException, OSError) as exc:
            raise ConnectorError(f"SSH {target}: {self._reason(exc, step)}") from None
        finally:
            client.close()

        output = dict(results[-1])
        if self.given("commands"):
            output["results"] = results
        ran = len(results)
        self.log(f"SSH {target}: ran {ran} command{'s' if ran > 1 else ''}, "
                 f"exit code {output['retcode']}")
        if expected is not None and output["retcode"] not in expected:
            what = "script" if self.given("script") else f"command {ran} of {len(commands)}"
            raise ConnectorError(
                f"SSH {target}: {what} exited with code {output['retcode']}"
                + _tail(output["stderr"] or output["stdout"]),
                output=output,
            )
        return output

    def _run(
        self, client: paramiko.SSHClient, command: str, deadline: float, timeout: float,
        done: list[dict[str, Any]], target: str,
    ) -> dict[str, Any]:
        transport = client.get_transport()
        if transport is None:  # pragma: no cover - connect() succeeded just before
            raise ConnectorError("SSH connection closed unexpectedly")
        channel = transport.open_session(timeout=max(0.1, deadline - time.monotonic()))
        stdout, stderr = bytearray(), bytearray()
        try:
            channel.exec_command(command)
            channel.shutdown_write()  # no standard input
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    partial = {"retcode": None, "stdout": _text(stdout), "stderr": _text(stderr)}
                    raise ConnectorError(
                        f"SSH {target}: timed out after {timeout:g} s",
                        output={**partial, "results": [*done, partial]}
                        if self.given("commands") else partial,
                    )
                with self.interruptible():  # a cancel lands here; `finally` closes the channel
                    select.select([channel], [], [], min(remaining, 0.5))
                while channel.recv_ready():
                    stdout += channel.recv(65536)
                while channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(65536)
                if (channel.exit_status_ready() and not channel.recv_ready()
                        and not channel.recv_stderr_ready()):
                    break
            retcode = channel.recv_exit_status()
        finally:
            channel.close()
        return {"retcode": retcode, "stdout": _text(stdout), "stderr": _text(stderr),
                **({"command": command} if self.given("commands") else {})}

    # --- inputs -----------------------------------------------------------------------------
    def _commands(self) -> list[str]:
        if self.given("script"):
            script = self.get("script")
            if not isinstance(script, str):
                raise InputError("script must be text")
            return [script]
        commands = self.get("commands")
        if isinstance(commands, str):
            commands = [commands]
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            raise InputError("commands must be a list of command texts")
        return commands

    def _expected(self) -> set[int] | None:
        raw = self.get("expected_retcode", 0)
        if raw == "any":
            return None
        codes = raw if isinstance(raw, list | tuple) else [raw]
        try:
            return {int(c) for c in codes}
        except (TypeError, ValueError):
            raise InputError(
                f"expected_retcode must be an exit code, a list of them or 'any', not {raw!r}"
            ) from None

    def _key(self) -> paramiko.PKey | None:
        if not self.given("key"):
            return None
        text = str(self.get("key"))
        passphrase = str(self.get("passphrase")) if self.given("passphrase") else None
        for cls in _KEY_CLASSES:
            try:
                return cls.from_private_key(io.StringIO(text), password=passphrase)
            except paramiko.PasswordRequiredException:
                raise InputError("the SSH key is encrypted: give its passphrase") from None
            except (paramiko.SSHException, ValueError, TypeError):
                continue
        raise InputError("key is not a private key paramiko can read (Ed25519, ECDSA or RSA)")

    def _trust(self, client: paramiko.SSHClient, host: str, port: int) -> None:
        if not self.given("hostkey"):
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            return
        raw = self.get("hostkey")
        lines = raw if isinstance(raw, list) else str(raw).splitlines()
        name = host if port == 22 else f"[{host}]:{port}"
        added = 0
        for line in lines:
            fields = str(line).split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) >= 3 and not _is_key_type(fields[0]):
                fields = fields[1:]  # a known_hosts line: hosts first
            if len(fields) < 2 or not _is_key_type(fields[0]):
                raise InputError("hostkey must look like 'ssh-ed25519 AAAA...' (a known_hosts key)")
            try:
                key = paramiko.PKey.from_type_string(fields[0], base64.b64decode(fields[1]))
            except (binascii.Error, paramiko.SSHException, ValueError) as exc:
                raise InputError(f"hostkey cannot be read: {exc}") from None
            client.get_host_keys().add(name, fields[0], key)
            added += 1
        if not added:
            raise InputError("hostkey holds no key")
        client.set_missing_host_key_policy(paramiko.RejectPolicy())

    def _log_unchecked(self, client: paramiko.SSHClient, target: str) -> None:
        transport = client.get_transport()
        key = transport.get_remote_server_key() if transport else None
        if key is not None:
            self.log(
                f"SSH {target}: host key not checked (no hostkey given); the server offered "
                f"{key.get_name()} {key.get_base64()}",
                level="WARNING",
            )

    def _reason(self, exc: BaseException, step: float) -> str:
        if isinstance(exc, socket.timeout | TimeoutError):
            return f"no answer within {step:g} s"
        text = str(exc) or type(exc).__name__
        if "not found in known_hosts" in text:
            return "the server's host key is not the one given in hostkey (another key type)"
        return text


def _is_key_type(word: str) -> bool:
    return word.startswith(("ssh-", "ecdsa-", "sk-"))


def _text(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")


def _tail(text: str, limit: int = 300) -> str:
    text = text.strip()
    if not text:
        return ""
    return ": " + (text if len(text) <= limit else "..." + text[-limit:])
