"""SMTP: send one mail with the standard library (plain, SSL or STARTTLS; text and HTML)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import mimetypes
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any

from .base import Connector as BaseConnector
from .base import ConnectorError, InputError


class Connector(BaseConnector):
    """Sends a mail; output `accepted`: the recipients the server accepted. Fails if the
    server refused all of them. `from` can also be given as `from_` (a Python keyword)."""

    type_name = "SMTP"
    inputs = {
        "host": "server host name or address",
        "port": "port (default 465 with ssl, 587 with starttls, else 25)",
        "login": "user name to log in with (no login if not given)",
        "password": "password to log in with",
        "ssl": "connect with TLS from the start (SMTPS, default false)",
        "starttls": "upgrade to TLS with STARTTLS (default false)",
        "verify_ssl": "check the server's certificate (default true)",
        "ca_cert": "PEM certificate(s) to trust instead of the system's",
        "from": "sender address",
        "from_": "sender address (another spelling of from)",
        "to": "recipient address(es): text (comma-separated) or a list",
        "cc": "copy recipient address(es)",
        "bcc": "blind copy recipient address(es), not shown in the mail",
        "reply_to": "Reply-To address",
        "subject": "subject line",
        "text": "the plain-text part",
        "html": "the HTML part",
        "attachments": "files to attach: a list of {filename, content (text) or content_base64, "
                       "content_type (guessed from the name if not given)}",
        "timeout": "seconds for connecting and each server answer (default 60)",
    }
    required = ("host", ("from", "from_"), "to", ("text", "html"))
    exclusive = (("from", "from_"),)
    default_timeout = 60.0

    def call(self) -> dict[str, Any]:
        use_ssl, use_starttls = bool(self.get("ssl", False)), bool(self.get("starttls", False))
        if use_ssl and use_starttls:
            raise InputError("give ssl (TLS from the start) or starttls, not both")
        host = str(self.get("host"))
        port = int(self.get("port", 465 if use_ssl else 587 if use_starttls else 25))
        sender = str(self.get("from") or self.get("from_"))
        to, cc, bcc = (_addresses(self.get(n), n) for n in ("to", "cc", "bcc"))
        recipients = [*to, *cc, *bcc]
        if not recipients:
            raise InputError("the SMTP connector needs at least one recipient in 'to'")
        message = self._message(sender, to, cc)
        timeout = self.timeout()
        target = f"{host}:{port}"
        server: smtplib.SMTP | None = None
        try:
            with self.interruptible():
                if use_ssl:
                    server = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self._tls())
                else:
                    server = smtplib.SMTP(host, port, timeout=timeout)
                    if use_starttls:
                        server.starttls(context=self._tls())
                if self.given("login"):
                    login, password = str(self.get("login")), str(self.get("password", ""))
                    if password:  # AUTH PLAIN sends base64 of "\0login\0password"
                        plain = f"\0{login}\0{password}".encode("utf-8", "replace")
                        self.scrubber.add_form(base64.b64encode(plain).decode())
                    server.login(login, password)
                refused = server.send_message(message, from_addr=sender, to_addrs=recipients)
                # The mail is sent; a rude goodbye does not undo that.
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    server.quit()
        except smtplib.SMTPRecipientsRefused as exc:
            raise ConnectorError(
                f"SMTP {target} refused every recipient: {_refusals(exc.recipients)}"
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectorError(
                f"SMTP {target}: login failed ({exc.smtp_code} {_decode(exc.smtp_error)})"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectorError(f"SMTP {target}: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            raise ConnectorError(
                f"SMTP {target} answered {exc.smtp_code} {_decode(exc.smtp_error)}"
            ) from None
        except TimeoutError:
            raise ConnectorError(f"SMTP {target}: no answer within {timeout:g} s") from None
        except ssl.SSLError as exc:
            raise ConnectorError(f"SMTP {target}: TLS failed: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ConnectorError(f"SMTP {target}: {exc or type(exc).__name__}") from None
        finally:
            if server is not None:
                server.close()
        accepted = [r for r in recipients if r not in refused]
        if refused:
            self.log(f"SMTP {target}: refused {_refusals(refused)}", level="WARNING")
        self.log(f"SMTP {target}: sent {message['Message-ID']} to {len(accepted)} recipient"
                 f"{'' if len(accepted) == 1 else 's'}")
        return {"accepted": accepted, "refused": sorted(refused),
                "message_id": message["Message-ID"]}

    def _message(self, sender: str, to: list[str], cc: list[str]) -> EmailMessage:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        if self.given("reply_to"):
            message["Reply-To"] = str(self.get("reply_to"))
        message["Subject"] = str(self.get("subject", ""))
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        text, html = self.get("text"), self.get("html")
        if text is not None:
            message.set_content(str(text))
            if html is not None:
                message.add_alternative(str(html), subtype="html")
        else:
            message.set_content(str(html), subtype="html")
        for filename, data, content_type in self._attachments():
            maintype, _, subtype = content_type.partition("/")
            message.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                                   filename=filename)
        return message

    def _attachments(self) -> list[tuple[str, bytes, str]]:
        """(filename, bytes, content type) of each attachment; the content comes from the
        flow (Cloudomation names File records here; the worker's files are not readable)."""
        raw = self.get("attachments", [])
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, list):
            raise InputError("attachments must be a list of {filename, content} objects")
        found = []
        for number, item in enumerate(raw, 1):
            if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
                raise InputError(f"attachment {number} needs a filename (text)")
            filename = item["filename"]
            if isinstance(item.get("content_base64"), str):
                try:
                    data = base64.b64decode(item["content_base64"], validate=True)
                except (binascii.Error, ValueError):
                    raise InputError(f"attachment {filename!r}: content_base64 is not base64") from None
            elif isinstance(item.get("content"), str):
                data = item["content"].encode("utf-8")
            else:
                raise InputError(f"attachment {filename!r} needs content (text) or content_base64")
            guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            content_type = str(item.get("content_type") or guessed)
            if "/" not in content_type:
                raise InputError(f"attachment {filename!r}: content_type {content_type!r} is not "
                                 "a MIME type like text/csv")
            found.append((filename, data, content_type))
        return found

    def _tls(self) -> ssl.SSLContext:
        ca = self.get("ca_cert")
        context = ssl.create_default_context(cadata=str(ca) if ca else None)
        if self.get("verify_ssl", True) is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _addresses(value: Any, name: str) -> list[str]:
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{name} must be an address, comma-separated addresses, or a list")
    return [address for _, address in getaddresses(value) if address]


def _decode(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _refusals(refused: dict[str, Any]) -> str:
    return "; ".join(f"{r} ({code} {_decode(text)})" for r, (code, text) in refused.items())
