"""SSH: run a script or a list of commands on a host with paramiko; retcode, stdout, stderr.

Cloudomation's names work too: `hostname` for the host, the `report` output (everything the
script wrote), and output variables: a script line `#OUTPUT_VAR(NAME)` (or the input
`output_vars=['NAME']`) returns the shell variable NAME's value at the end of the script in
`output_value['var']['NAME']`.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import secrets
import select
import socket
import time
from typing import Any, ClassVar

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
        "hostname": "host name or address (Cloudomation's name for host)",
        "port": "port (default 22)",
        "username": "user name",
        "password": "password (or give key)",
        "key": "private key text (OpenSSH or PEM; Ed25519, ECDSA or RSA)",
        "passphrase": "passphrase of an encrypted key",
        "hostkey": "the server's public host key ('ssh-ed25519 AAAA...', known_hosts lines); "
                   "checked when given",
        "script": "a shell script to run",
        "commands": "a list of commands to run one after another",
        "output_vars": "names of shell variables whose values the script returns in 'var' "
                       "(as do '#OUTPUT_VAR(NAME)' lines in the script)",
        "expected_retcode": "exit code(s) that count as success (default 0), or 'any'",
        "timeout": "seconds the whole call may take, connecting included (default 600)",
    }
    required: ClassVar[tuple[str | tuple[str, ...], ...]] = (
        ("host", "hostname"), "username", ("password", "key"), ("script", "commands"),
    )
    exclusive = (("script", "commands"), ("host", "hostname"))
    secret_inputs = frozenset({"key", "passphrase"})
    default_timeout = 600.0

    def call(self) -> dict[str, Any]:
        host, port, username = self.target()
        commands = self._commands()
        names = self._output_vars()
        marker = f"__OUTPUT_VAR_{secrets.token_hex(8)}__"
        if names:
            commands = [commands[0] + _epilogue(names, marker)]
        expected = self._expected()
        timeout = self.timeout()
        deadline = time.monotonic() + timeout
        target = f"{username}@{host}:{port}"
        client = paramiko.SSHClient()
        results: list[dict[str, Any]] = []
        step = min(timeout, _CONNECT_TIMEOUT)
        try:
            self.connect_client(client, host, port, username, step)
            for command in commands:
                result = self._run(client, command, deadline, timeout, results, target)
                results.append(result)
                if expected is not None and result["retcode"] not in expected:
                    break
        except (paramiko.SSHException, OSError) as exc:
            raise self.failure(exc, target, step) from None
        finally:
            client.close()

        output = dict(results[-1])
        if names:
            output["stdout"], output["var"] = _take_vars(output["stdout"], marker)
        output["report"] = output["stdout"] + output["stderr"]
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

    # --- shared with the SCP connector --------------------------------------------------------
    def target(self) -> tuple[str, int, str]:
        """(host, port, username): `host` or Cloudomation's `hostname`."""
        host = str(self.get("host") or self.get("hostname"))
        return host, int(self.get("port", 22)), str(self.get("username"))

    def connect_client(
        self, client: paramiko.SSHClient, host: str, port: int, username: str, step: float,
    ) -> None:
        """Connect and authenticate, each step bounded by `step` seconds, checking the host
        key when one is given (else logging the key the server offered)."""
        self._trust(client, host, port)
        with self.interruptible():
            client.connect(
                host, port=port, username=username,
                password=str(self.get("password")) if self.given("password") else None,
                pkey=self._key(), timeout=step, banner_timeout=step, auth_timeout=step,
                channel_timeout=step, allow_agent=False, look_for_keys=False,
            )
        if not self.given("hostkey"):
            self._log_unchecked(client, f"{username}@{host}:{port}")

    def failure(self, exc: BaseException, target: str, step: float) -> ConnectorError:
        """The ConnectorError for a paramiko or socket error, naming the cause."""
        if isinstance(exc, paramiko.BadHostKeyException):
            return ConnectorError(
                f"{self.type_name} {target}: the server's host key is not the one given in "
                f"hostkey (it offered {exc.key.get_name()} {exc.key.get_base64()})"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            return ConnectorError(f"{self.type_name} {target}: authentication failed")
        return ConnectorError(f"{self.type_name} {target}: {self._reason(exc, step)}")

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

    def _output_vars(self) -> list[str]:
        """The variables to return: `output_vars` and the script's #OUTPUT_VAR lines."""
        raw = self.get("output_vars", [])
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
            raise InputError("output_vars must be a list of shell variable names")
        if raw and not self.given("script"):
            raise InputError("output_vars needs a script (not commands)")
        names = list(raw)
        if self.given("script"):
            names += _OUTPUT_VAR_LINE.findall(str(self.get("script")))
        for name in names:
            if not _SHELL_NAME.fullmatch(name):
                raise InputError(f"output variable {name!r} is not a shell variable name")
        return list(dict.fromkeys(names))

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
                f"{self.type_name} {target}: host key not checked (no hostkey given); the server offered "
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


_OUTPUT_VAR_LINE = re.compile(r"^[ \t]*#[ \t]*OUTPUT_VAR\((\w+)\)[ \t]*$", re.MULTILINE)
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _epilogue(names: list[str], marker: str) -> str:
    """Shell lines run after the script: each variable base64-encoded (values may hold
    newlines) on a line of its own after the marker; the script's exit code is kept."""
    lines = ["", "__output_var_rc=$?"]
    for name in names:
        lines.append(f'printf \'\\n{marker} {name} \'; printf \'%s\' "${{{name}-}}" | base64 | '
                     "tr -d '\\n'; printf '\\n'")
    lines.append("exit $__output_var_rc")
    return "\n".join(lines) + "\n"


def _take_vars(stdout: str, marker: str) -> tuple[str, dict[str, str]]:
    """(stdout without the epilogue's lines, the variables it printed)."""
    head, found, tail = stdout.partition(f"\n{marker} ")
    if not found:
        return stdout, {}
    values: dict[str, str] = {}
    for line in (marker + " " + tail).splitlines():
        if line.startswith(marker + " "):
            _, name, encoded = [*line.split(" ", 2), ""][:3]
            try:
                values[name] = base64.b64decode(encoded.strip()).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                values[name] = ""
    return head, values


def _is_key_type(word: str) -> bool:
    return word.startswith(("ssh-", "ecdsa-", "sk-"))


def _text(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")


def _tail(text: str, limit: int = 300) -> str:
    text = text.strip()
    if not text:
        return ""
    return ": " + (text if len(text) <= limit else "..." + text[-limit:])
