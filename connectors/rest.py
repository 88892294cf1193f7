"""REST: one HTTP request with requests, retried with exponential backoff unless turned off.

The inputs carry Cloudomation's names too: `data` is a JSON body when it is an object or a
list (Cloudomation's deprecated spelling of `json`), `urlencoded` a form body, `username` and
`password` Basic auth, `connect_timeout`/`read_timeout` the two halves of `timeout`, and
`base_path` a path prefix. Retries are on by default, as in Cloudomation.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

import requests
import requests.auth
import requests.utils

from .base import Connector as BaseConnector
from .base import ConnectorError, InputError, mask_url, url_password

DEFAULT_EXPECTED = (200, 201, 202, 204)
# Cloudomation's documented defaults (initial 1 s, at most 60 s apart, 600 s in all), and a
# bound on the count so that a dead peer fails within a few attempts, not ten minutes.
DEFAULT_BACKOFF = {"initial": 1.0, "maximum": 60.0, "multiplier": 2.0, "deadline": 600.0,
                   "max_retries": 4.0}
# Answers that say "try again later"; any other status is the server's answer and is kept.
# A 500 is not among them: the request may have done part of its work.
RETRIED_STATUSES = frozenset({429, 502, 503, 504})


class Connector(BaseConnector):
    """An HTTP request; output `status_code, headers, json` (if the body is JSON), `text`,
    `url` (after redirects). A status outside `expected_status_code` ends in error."""

    type_name = "REST"
    inputs = {
        "url": "the full URL (or give scheme, hostname, port, path)",
        "scheme": "http or https (default https) when no url is given",
        "hostname": "host name when no url is given",
        "port": "port when no url is given",
        "path": "path when no url is given (after base_path); appended to url if both given",
        "base_path": "a path prefix: the request goes to base_path/path",
        "method": "HTTP method, default GET",
        "params": "query parameters (object)",
        "headers": "request headers (object)",
        "json": "a JSON body",
        "data": "a JSON body (object or list, as in Cloudomation) or a raw body (text)",
        "urlencoded": "a form body (object): application/x-www-form-urlencoded",
        "text": "a text/plain body",
        "auth": "basic auth: [user, password] or {user, password}",
        "username": "basic auth user name (with password)",
        "password": "basic auth password (with username)",
        "authentication_method": "'basic' (the only one; the default when username is given)",
        "timeout": "seconds to connect and to wait for the answer (default 60)",
        "connect_timeout": "seconds to connect (default: timeout)",
        "read_timeout": "seconds to wait for the answer (default: timeout)",
        "verify_ssl": "check the server's certificate (default true), or a CA bundle path",
        "allow_redirects": "follow redirects (default true)",
        "max_redirects": "at most this many redirects (default 10, as in Cloudomation)",
        "expected_status_code": "status code(s) that count as success (default 200, 201, 202, 204)",
        "retry_backoff": "retry connection errors and 429/502/503/504 (on by default): "
                         "{initial, maximum, multiplier, deadline, max_retries}, or false",
    }
    required = (("url", "hostname"),)
    exclusive = (("json", "data", "urlencoded", "text"), ("url", "hostname"),
                 ("auth", "username"))
    secret_inputs = frozenset({"auth"})
    default_timeout = 60.0

    def call(self) -> dict[str, Any]:
        url = self._url()
        method = str(self.get("method", "GET")).upper()
        expected = self._expected()
        backoff = self._backoff()
        shown = f"{method} {mask_url(url)}"
        request = self._request_kwargs()
        self._mask_basic_auth(request.get("auth") or _url_auth(url))
        started = time.monotonic()
        delay = backoff["initial"] if backoff else 0.0
        session = requests.Session()
        session.max_redirects = self._max_redirects()
        try:
            attempt = 0
            while True:
                attempt += 1
                response, failure = self._attempt(session, method, url, request, shown)
                retryable = (
                    failure is not None
                    or (response is not None and response.status_code in RETRIED_STATUSES
                        and response.status_code not in expected)
                )
                if not retryable or backoff is None:
                    break
                if attempt > backoff["max_retries"]:
                    self.log(f"{shown}: giving up after {attempt} attempts", level="WARNING")
                    break
                if time.monotonic() - started + delay > backoff["deadline"]:
                    self.log(f"{shown}: giving up after {attempt} attempts (deadline "
                             f"{backoff['deadline']:g} s)", level="WARNING")
                    break
                why = failure or f"status {response.status_code if response is not None else '?'}"
                self.log(f"{shown}: {why}; retrying in {delay:g} s", level="WARNING",
                         attempt=attempt)
                self.sleep(delay)
                delay = min(delay * backoff["multiplier"], backoff["maximum"])
            if response is None:
                raise ConnectorError(f"{shown} {failure}")
            output = self._output(response)
            self.log(f"{shown} -> {response.status_code} ({attempt} attempt"
                     f"{'s' if attempt > 1 else ''}, {time.monotonic() - started:.2f} s)")
            if response.status_code not in expected:
                raise ConnectorError(
                    f"{shown} answered {response.status_code} {response.reason or ''}".rstrip()
                    + f" (expected {', '.join(map(str, sorted(expected)))})"
                    + _excerpt(response.text),
                    output=output,
                )
            return output
        finally:
            session.close()

    def _mask_basic_auth(self, auth: tuple[str, str] | None) -> None:
        """Mask the Authorization header's credential as requests will build it: the base64
        of `user:password` shows the password to anyone who decodes it, and a peer may echo
        the header back (the clear password is masked already: it is a secret input)."""
        if not auth or not auth[1]:
            return
        try:  # requests' own builder (private, typed in its stubs): exactly what it sends
            header = requests.auth._basic_auth_str(*auth)
        except UnicodeEncodeError:  # not latin-1: requests refuses to send it, nothing leaks
            return
        self.scrubber.add_form(header.removeprefix("Basic "))

    # --- one request ------------------------------------------------------------------------
    def _attempt(
        self, session: requests.Session, method: str, url: str, request: dict[str, Any],
        shown: str,
    ) -> tuple[requests.Response | None, str | None]:
        timeout = request["timeout"]
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout,) * 2
        try:
            with self.interruptible():
                response = session.request(method, url, **request)
                response.content  # noqa: B018 - read the body inside the interruptible block
            return response, None
        except requests.exceptions.ConnectTimeout:
            return None, f"could not connect within {connect_timeout:g} s"
        except requests.exceptions.ReadTimeout:
            # Not retried: the server may have acted on the request already.
            raise ConnectorError(
                f"{shown} timed out: no answer within {read_timeout:g} s"
            ) from None
        except requests.exceptions.SSLError as exc:
            raise ConnectorError(f"{shown} failed the TLS handshake: {_reason(exc)}") from None
        except requests.exceptions.TooManyRedirects:
            raise ConnectorError(f"{shown} redirected too many times") from None
        except requests.exceptions.ConnectionError as exc:
            return None, f"could not connect: {_reason(exc)}"
        except requests.exceptions.InvalidURL as exc:
            raise InputError(f"url {mask_url(url)!r} is not valid: {exc}") from None
        except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            raise InputError(f"url {mask_url(url)!r} needs a scheme, http:// or https://") from None

    def _output(self, response: requests.Response) -> dict[str, Any]:
        output: dict[str, Any] = {
            "status_code": response.status_code,
            "headers": dict(response.headers),
            "text": response.text,
            "url": mask_url(response.url),
        }
        if "json" in response.headers.get("Content-Type", "").lower() and response.content:
            with contextlib.suppress(ValueError):  # declared JSON but is not: text is there
                output["json"] = response.json()
        return output

    # --- inputs -----------------------------------------------------------------------------
    def _url(self) -> str:
        # Cloudomation: "full path = base_path/path"; each part joined with one slash.
        parts = [str(self.get(n)).strip("/") for n in ("base_path", "path") if self.given(n)]
        path = "/".join(p for p in parts if p)
        if self.given("url"):
            url = self.get("url")
            if not isinstance(url, str):
                raise InputError("url must be text")
            _check_scheme(url.split(":", 1)[0] if ":" in url else "", mask_url(url))
            return f"{url.rstrip('/')}/{path}" if path else url
        scheme = str(self.get("scheme", "https")).lower()
        _check_scheme(scheme, f"scheme {scheme!r}")
        host = str(self.get("hostname"))
        port = self.get("port")
        return f"{scheme}://{host}{f':{int(port)}' if port else ''}{'/' + path if path else ''}"

    def _expected(self) -> set[int]:
        raw = self.get("expected_status_code", DEFAULT_EXPECTED)
        codes = raw if isinstance(raw, list | tuple) else [raw]
        try:
            return {int(c) for c in codes}
        except (TypeError, ValueError):
            raise InputError(
                f"expected_status_code must be a status code or a list of them, not {raw!r}"
            ) from None

    def _backoff(self) -> dict[str, float] | None:
        raw = self.values.get("retry_backoff", True)
        if raw in (False, 0):
            return None
        if raw in (None, True):
            raw = {}
        if not isinstance(raw, dict):
            raise InputError("retry_backoff must be an object "
                             "{initial, maximum, multiplier, deadline, max_retries} or false")
        unknown = set(raw) - set(DEFAULT_BACKOFF)
        if unknown:
            raise InputError(
                f"retry_backoff has no {', '.join(sorted(unknown))}; "
                "it takes initial, maximum, multiplier, deadline, max_retries"
            )
        backoff = {**DEFAULT_BACKOFF}
        for key, value in raw.items():
            try:
                backoff[key] = float(value)
            except (TypeError, ValueError):
                raise InputError(f"retry_backoff.{key} must be a number, not {value!r}") from None
            if backoff[key] < 0 or (key == "multiplier" and backoff[key] < 1):
                raise InputError(f"retry_backoff.{key} is out of range: {value!r}")
        return backoff

    def _request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "timeout": self._timeouts(),
            "allow_redirects": bool(self.get("allow_redirects", True)),
            "verify": self.get("verify_ssl", True),
        }
        params, headers = self.get("params", {}), self.get("headers", {})
        if not isinstance(params, dict):
            raise InputError("params must be an object")
        if not isinstance(headers, dict):
            raise InputError("headers must be an object")
        if params:
            kwargs["params"] = params
        if headers:
            kwargs["headers"] = {str(k): str(v) for k, v in headers.items()}
        if self.values.get("json") is not None:
            kwargs["json"] = self.values["json"]
        elif isinstance(self.values.get("data"), dict | list):
            kwargs["json"] = self.values["data"]  # Cloudomation: "DEPRECATED: a JSON body"
        elif self.given("data"):
            kwargs["data"] = self.get("data")
        elif self.given("urlencoded"):
            form = self.get("urlencoded")
            if not isinstance(form, dict):
                raise InputError("urlencoded must be an object (the form's fields)")
            kwargs["data"] = form
        elif self.given("text"):
            kwargs["data"] = str(self.get("text")).encode()
            headers = kwargs.setdefault("headers", {})
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "text/plain; charset=utf-8"
        auth = self.get("auth")
        if auth:
            kwargs["auth"] = _basic_auth(auth)
        method = str(self.get("authentication_method", "basic")).lower()
        if method != "basic":
            raise InputError(f"authentication_method {method!r} is not supported; only 'basic'")
        if self.given("username"):
            kwargs["auth"] = (str(self.get("username")), str(self.get("password", "")))
        elif self.given("password"):
            raise InputError("password needs username (Basic auth)")
        return kwargs

    def _max_redirects(self) -> int:
        raw = self.get("max_redirects", 10)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise InputError(f"max_redirects must be a whole number of 0 or more, not {raw!r}")
        return raw

    def _timeouts(self) -> float | tuple[float, float]:
        """`timeout`, or (connect, read) when either of Cloudomation's two is given."""
        default = self.timeout()
        if not (self.given("connect_timeout") or self.given("read_timeout")):
            return default
        pair = []
        for name in ("connect_timeout", "read_timeout"):
            raw = self.values.get(name)
            try:
                value = default if raw is None else float(raw)
            except (TypeError, ValueError):
                raise InputError(f"{name} must be a number of seconds, not {raw!r}") from None
            if not value > 0:
                raise InputError(f"{name} must be more than 0 seconds, not {raw!r}")
            pair.append(value)
        return pair[0], pair[1]


def _basic_auth(auth: Any) -> tuple[str, str]:
    if isinstance(auth, list | tuple) and len(auth) == 2:
        return str(auth[0]), str(auth[1])
    if isinstance(auth, dict):
        user = auth.get("user", auth.get("username"))
        if user is not None and "password" in auth:
            return str(user), str(auth["password"])
    raise InputError("auth must be [user, password] or {\"user\": ..., \"password\": ...}")


def _url_auth(url: str) -> tuple[str, str] | None:
    """The (user, password) requests takes from the URL's user info when no auth is given."""
    if not url_password(url):
        return None
    return requests.utils.get_auth_from_url(url)


_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")


def _reason(exc: Exception) -> str:
    """The cause without urllib3's wrapping ('Connection refused', not three nested reprs)."""
    text = str(exc)
    found = _ERRNO.search(text)
    if found:
        return found.group(0).strip()
    return text[:300]


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    if not text:
        return ""
    return ": " + (text if len(text) <= limit else text[:limit] + "...")


def _check_scheme(scheme: str, shown: str) -> None:
    """Only HTTP(S): a flow must not read local files (file://) or reach other protocols."""
    if scheme.strip().lower() not in ("http", "https"):
        raise InputError(f"{shown}: only http:// and https:// URLs are allowed")
