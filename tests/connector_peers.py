"""Real peers for the connector tests, on 127.0.0.1, stopped however a test ends:
an HTTP server, an SSH server (paramiko) that really runs commands, an SMTP server
(aiosmtpd), and a scratch PostgreSQL database."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# --- HTTP ---------------------------------------------------------------------------------


class HttpPeer:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()  # ends a /hang request early
        self.hanging = threading.Event()  # set once a /hang request arrived
        self.password = "s3cret-pass"  # /auth wants alice with this password
        self.authorization: dict[str, str | None] = {}  # path -> the latest Authorization

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path


def _handler(peer_box: list[HttpPeer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            data = (json.dumps(body) if content_type == "application/json" else str(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> None:
            peer = peer_box[0]
            parts = urlsplit(self.path)
            path = parts.path
            peer.hits[path] += 1
            peer.authorization[path] = self.headers.get("Authorization")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            if path == "/json":
                self._send(200, {"hello": "world", "n": 1})
            elif path == "/text":
                self._send(200, "plain text", "text/plain; charset=utf-8")
            elif path == "/echo" or path.startswith("/echo/"):  # /echo/<status>: answer that
                code = int(path.rsplit("/", 1)[1]) if path.startswith("/echo/") else 200
                self._send(code, {  # what a peer may show of the request, credentials first
                    "authorization": self.headers.get("Authorization"),
                    "raw_query": parts.query, "query": parse_qs(parts.query),
                    "method": self.command, "body": body,
                    "content_type": self.headers.get("Content-Type"),
                    "x_token": self.headers.get("X-Token"),
                    "headers": dict(self.headers.items()),
                })
            elif path == "/redirect":
                self._send(302, "", "text/plain", {"Location": "/json"})
            elif path.startswith("/status/"):
                code = int(path.rsplit("/", 1)[1])
                self._send(code, f"status {code} body", "text/plain")
            elif path.startswith("/flaky/"):  # /flaky/<key>/<failures>: 503 that often, then 200
                failures = int(path.rsplit("/", 1)[1])
                if peer.hits[path] <= failures:
                    self._send(503, "try again", "text/plain")
                else:
                    self._send(200, {"attempts": peer.hits[path]})
            elif path == "/hang":
                peer.hanging.set()
                peer.release.wait(30)
                self._send(200, {"late": True})
            elif path == "/auth":
                pair = f"alice:{peer.password}".encode()
                expected = "Basic " + base64.b64encode(pair).decode()
                if self.headers.get("Authorization") == expected:
                    self._send(200, {"user": "alice"})
                else:
                    self._send(401, {"detail": "who are you?"})
            else:
                self._send(404, {"detail": "no such path"})

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _route

    return Handler


@contextlib.contextmanager
def http_server() -> Iterator[HttpPeer]:
    box: list[HttpPeer] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    server.daemon_threads = True
    peer = HttpPeer(server)
    box.append(peer)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        peer.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- SSH ----------------------------------------------------------------------------------


def ed25519_openssh() -> tuple[str, str]:
    """(private key in OpenSSH format, public key line 'ssh-ed25519 AAAA...')."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return private, public


@dataclass
class SshPeer:
    port: int
    hostkey: str  # 'ssh-ed25519 AAAA...'
    user: str = "deploy"
    password: str = "ssh-pass-9f3k"
    client_key: str = ""  # private key (OpenSSH) that the server accepts
    commands: list[str] = field(default_factory=list)
    closed_early: list[tuple[str, float]] = field(default_factory=list)  # (command, when)
    started: threading.Event = field(default_factory=threading.Event)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _run_on_channel(peer: SshPeer, channel: Any, command: str) -> None:
    process = subprocess.Popen(
        ["bash", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    peer.processes.append(process)
    peer.started.set()

    def pump(stream: Any, send: Any) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            with contextlib.suppress(Exception):
                send(chunk)

    pumps = [
        threading.Thread(target=pump, args=(process.stdout, channel.sendall), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, channel.sendall_stderr), daemon=True),
    ]
    for p in pumps:
        p.start()
    while process.poll() is None:
        if channel.closed or not channel.get_transport().is_active():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            peer.closed_early.append((command, time.monotonic()))
            process.wait(5)
            return
        time.sleep(0.02)
    for p in pumps:
        p.join(5)
    with contextlib.suppress(Exception):
        channel.send_exit_status(process.returncode)
        channel.close()


def _sftp_server_class() -> type[Any]:
    import paramiko  # type: ignore[import-untyped]

    def errno_of(exc: OSError) -> int:
        return int(paramiko.SFTPServer.convert_errno(exc.errno))

    class Handle(paramiko.SFTPHandle):
        pass

    class LocalSftp(paramiko.SFTPServerInterface):
        """The few SFTP requests a client makes to read, write and chmod one file."""

        def open(self, path: str, flags: int, attr: Any) -> Any:
            try:
                fd = os.open(path, flags, 0o644)
            except OSError as exc:
                return errno_of(exc)
            mode = "rb" if flags & (os.O_WRONLY | os.O_RDWR) == 0 else (
                "ab" if flags & os.O_APPEND else "wb" if flags & os.O_WRONLY else "r+b")
            handle = Handle(flags)
            handle.readfile = handle.writefile = os.fdopen(fd, mode)  # type: ignore[attr-defined]
            return handle

        def stat(self, path: str) -> Any:
            try:
                return paramiko.SFTPAttributes.from_stat(os.stat(path))
            except OSError as exc:
                return errno_of(exc)

        lstat = stat

        def chattr(self, path: str, attr: Any) -> int:
            try:
                if attr.st_mode is not None:
                    os.chmod(path, attr.st_mode)
            except OSError as exc:
                return errno_of(exc)
            return paramiko.SFTP_OK

    return LocalSftp


@contextlib.contextmanager
def ssh_server() -> Iterator[SshPeer]:
    import paramiko  # type: ignore[import-untyped]

    sftp_server = _sftp_server_class()
    host_private, host_public = ed25519_openssh()
    host_key = paramiko.Ed25519Key.from_private_key(io.StringIO(host_private))
    client_private, client_public = ed25519_openssh()
    allowed = client_public.split()[1]
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    peer = SshPeer(port=listener.getsockname()[1], hostkey=host_public, client_key=client_private)
    stop = threading.Event()
    transports: list[Any] = []

    class Server(paramiko.ServerInterface):
        def check_auth_password(self, username: str, password: str) -> int:
            ok = username == peer.user and password == peer.password
            return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

        def check_auth_publickey(self, username: str, key: Any) -> int:
            ok = username == peer.user and key.get_base64() == allowed
            return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

        def get_allowed_auths(self, username: str) -> str:
            return "password,publickey"

        def check_channel_request(self, kind: str, chanid: int) -> int:
            if kind == "session":
                return paramiko.OPEN_SUCCEEDED
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

        def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
            text = command.decode()
            peer.commands.append(text)
            threading.Thread(target=_run_on_channel, args=(peer, channel, text),
                             daemon=True).start()
            return True

    def accept() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            transport = paramiko.Transport(sock)
            transport.add_server_key(host_key)
            # SFTP on the real file system, as sshd's internal-sftp (the SCP connector's way).
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, sftp_server)
            transports.append(transport)
            with contextlib.suppress(Exception):
                transport.start_server(server=Server())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for transport in transports:
            with contextlib.suppress(Exception):
                transport.close()
        for process in peer.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


# --- TLS and SMTP -------------------------------------------------------------------------


def self_signed_cert(directory: Path) -> tuple[Path, Path, str]:
    """(cert file, key file, cert PEM) for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_text(pem)
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return cert_file, key_file, pem


@dataclass
class SmtpPeer:
    port: int
    messages: list[Any] = field(default_factory=list)  # aiosmtpd envelopes
    logins: list[tuple[str, str]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_server(
    *, tls_dir: Path | None = None, implicit_tls: bool = False, login: tuple[str, str] | None = None,
) -> Iterator[SmtpPeer]:
    """An aiosmtpd server; with `tls_dir` it offers STARTTLS (or, `implicit_tls`, SMTPS)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    peer = SmtpPeer(port=_free_port())

    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                              rcpt_options: Any) -> str:
            if address.startswith("nobody@"):
                return "550 5.1.1 no such mailbox"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            peer.messages.append(envelope)
            return "250 Message accepted"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        user, password = auth_data.login.decode(), auth_data.password.decode()
        peer.logins.append((user, password))
        ok = login is not None and (user, password) == login
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    kwargs: dict[str, Any] = {}
    context = None
    if tls_dir is not None:
        cert_file, key_file, _ = self_signed_cert(tls_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
    if login is not None:
        kwargs.update(authenticator=authenticator, auth_require_tls=tls_dir is not None)
    if context is not None and not implicit_tls:
        kwargs.update(tls_context=context, require_starttls=True)
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=peer.port,
        ssl_context=context if implicit_tls else None, server_hostname="127.0.0.1", **kwargs,
    )
    controller.start()
    try:
        yield peer
    finally:
        controller.stop()


# --- PostgreSQL ---------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[dict[str, Any]]:
    """A fresh database on the machine's PostgreSQL (127.0.0.1:5432, user postgres)."""
    import psycopg

    admin: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres",
             "connect_timeout": 5}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": name}
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- git ----------------------------------------------------------------------------------


@dataclass
class GitPeer:
    port: int
    base: Path  # the daemon's base path: repositories are git://127.0.0.1:<port>/<name>

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"


def git(*args: str, cwd: Path) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.org"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=30, check=True)
    return done.stdout


def git_repository(base: Path, name: str, commits: list[dict[str, str | bytes]]) -> None:
    """A bare repository base/name with one commit per dict ({path: text, '_message': ...})
    on main, and a tag v1 on the first commit."""
    work = base / f"{name}-work"
    work.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    for number, files in enumerate(commits):
        for path, text in files.items():
            if path != "_message":
                (work / path).parent.mkdir(parents=True, exist_ok=True)
                if isinstance(text, bytes):
                    (work / path).write_bytes(text)
                else:
                    (work / path).write_text(text)
        git("add", "-A", cwd=work)
        git("commit", "--quiet", "-m", str(files.get("_message", f"commit {number + 1}")),
            cwd=work)
        if number == 0:
            git("tag", "v1", cwd=work)
    git("clone", "--quiet", "--bare", str(work), str(base / name), cwd=base)


@contextlib.contextmanager
def git_daemon(base: Path) -> Iterator[GitPeer]:
    """`git daemon` on 127.0.0.1 serving every repository below `base`, read-only."""
    port = _free_port()
    process = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
         f"--port={port}", f"--base-path={base}", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # ready once it accepts connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("git daemon did not start") from None
                time.sleep(0.05)
        yield GitPeer(port=port, base=base)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
