"""The base class of connector types, their errors, and the masking of secrets.

A connector type is one module (connectors/rest.py, ...) with a `Connector` subclass that
declares its inputs and implements `call()`. The registry imports the module when the
type is first used; the runner builds the inputs, checks them, and calls `run()`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

MASK = "********"
# Inputs that are secrets in every connector type (a type may name more: `secret_inputs`).
SECRET_INPUT_NAMES = frozenset({"password", "key", "passphrase", "token", "secret", "auth"})
# Shorter secrets would mask ordinary text everywhere (a 2-character password is in half
# the words of an output): they, and every form derived from them, are left as they are.
_MIN_SCRUB_LENGTH = 4


class ConnectorError(Exception):
    """A connector call failed; the message stands alone and holds no secret.

    `output` (optional) is stored as the execution's output_value, so that a flow that
    catches the failure can still read e.g. the status code or the script's stderr.
    """

    def __init__(self, message: str, output: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.output = output


class InputError(ConnectorError):
    """The inputs of a call are missing, unknown or of the wrong kind."""


class UnknownConnectorType(ConnectorError):
    """No connector type of that name."""


def url_password(url: str) -> str | None:
    """The password in a URL's user info (`scheme://user:password@host`), or None."""
    if "://" not in url or "@" not in url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def mask_url(url: str) -> str:
    """The URL with the password of its user info replaced by the mask."""
    if not url_password(url):
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[1]
    netloc = f"{parts.username}:{MASK}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Scrubber:
    """Replaces known secret strings (and URL passwords) by the mask in text and JSON.

    A secret is masked in its clear form and in each form derived from it that a connector,
    a library or a peer that echoes the request may show: see `derived_forms`. A connector
    that builds an encoded credential itself (the REST connector's base64 of `user:password`
    in the Authorization header) registers that form with `add_form`, before it is sent.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self.secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Mask these secrets from now on, with each of their derived forms."""
        self._register(form for s in secrets if len(s) >= _MIN_SCRUB_LENGTH
                       for form in derived_forms(s))

    def add_form(self, *forms: str) -> None:
        """Mask these exact strings (an encoded credential a connector built) from now on."""
        self._register(forms)

    def _register(self, forms: Iterable[str]) -> None:
        self._forms.update(f for f in forms if len(f) >= _MIN_SCRUB_LENGTH)
        # Longest first, so that a form containing another (a secret containing a shorter
        # one, the padded base64 containing the unpadded) is masked whole.
        self.secrets = sorted(self._forms, key=lambda f: (-len(f), f))

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(v) for v in value]
        return value


def derived_forms(secret: str) -> set[str]:
    """The secret and the forms of it that may end up in an output, a log or an error.

    URL-encoded as in a path or query (quote with safe="", quote_plus: requests encodes
    `params` so), URL-decoded (a password in a URL's user info is given encoded; requests
    decodes it for the Authorization header), base64 of it alone (standard and urlsafe,
    with and without padding), and escaped as inside a JSON string (a response's `text`).
    Base64 of the secret inside a longer string (`user:password`) is not among them: it
    depends on what precedes it, so whoever builds it registers it (Scrubber.add_form).
    """
    forms = {secret}
    decoded = unquote(secret)
    for clear in {secret, decoded}:
        forms |= {clear, quote(clear, safe=""), quote_plus(clear)}
        raw = clear.encode()
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            text = encoded.decode()
            forms |= {text, text.rstrip("=")}
        forms |= {json.dumps(clear)[1:-1], json.dumps(clear, ensure_ascii=False)[1:-1]}
    return forms


# scheme://user:password@ -> keep scheme and user, mask the password
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")


def secret_strings(value: Any, key: str | None = None) -> Iterator[str]:
    """The strings in a secret input that must never appear anywhere (not user names)."""
    if key in ("user", "username", "login"):
        return
    if isinstance(value, str):
        yield value
        password = url_password(value)
        if password:
            yield password
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from secret_strings(v, str(k))
    elif isinstance(value, list | tuple):
        items = list(value)
        if key == "auth" and len(items) == 2:  # (user, password)
            items = items[1:]
        for item in items:
            yield from secret_strings(item)


def json_number(value: float) -> float | str:
    """JSON has no NaN or infinities: those become the text PostgreSQL uses for them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class Connector:
    """One call of a connector type. Subclasses declare their inputs and implement `call`.

    Class attributes:
        type_name      the registry name ('REST')
        inputs         input name -> one line of documentation (unknown inputs are refused)
        required       each entry is one input name, or a tuple of names of which one is needed
        exclusive      tuples of inputs of which at most one may be given
        secret_inputs  inputs kept out of input_value, logs and errors (besides the common ones)
        default_timeout  seconds, when the `timeout` input is not given
    """

    type_name: ClassVar[str] = ""
    inputs: ClassVar[dict[str, str]] = {}
    required: ClassVar[tuple[str | tuple[str, ...], ...]] = ()
    exclusive: ClassVar[tuple[tuple[str, ...], ...]] = ()
    secret_inputs: ClassVar[frozenset[str]] = frozenset()
    default_timeout: ClassVar[float] = 60.0

    def __init__(
        self, inputs: dict[str, Any], *, execution_id: int | None = None,
        scrubber: Scrubber | None = None,
        log: Callable[[str, str, dict[str, Any]], None] | None = None,
        interruptible: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        """`log(text, level, data)` appends a (masked) entry to the execution's log and
        `interruptible()` is a block a cancel may interrupt: the engine passes both, so that
        connectors know nothing of executions. Without them a call logs nothing and is not
        interruptible (a connector used on its own, as in a test)."""
        self.values = inputs
        self.execution_id = execution_id
        self.scrubber = scrubber or Scrubber()
        self._log = log
        self._interruptible = interruptible

    # --- what the runner calls -------------------------------------------------------------
    @classmethod
    def secret_names(cls) -> frozenset[str]:
        return SECRET_INPUT_NAMES | cls.secret_inputs

    @classmethod
    def split_secrets(cls, inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(inputs with secrets masked, the secrets): the first is safe to store in clear."""
        public: dict[str, Any] = {}
        secret: dict[str, Any] = {}
        names = cls.secret_names()
        for key, value in inputs.items():
            if key in names and value not in (None, ""):
                public[key], secret[key] = MASK, value
            elif isinstance(value, str) and url_password(value):
                public[key], secret[key] = mask_url(value), value
            else:
                public[key] = value
        return public, secret

    def check(self) -> None:
        """Refuse unknown inputs, missing required ones, and exclusive ones given together."""
        unknown = sorted(set(self.values) - set(self.inputs))
        if unknown:
            raise InputError(
                f"the {self.type_name} connector has no input {', '.join(map(repr, unknown))}; "
                f"its inputs are {', '.join(sorted(self.inputs))}"
            )
        for need in self.required:
            names = (need,) if isinstance(need, str) else need
            if not any(self.given(n) for n in names):
                wanted = " or ".join(repr(n) for n in names)
                raise InputError(f"the {self.type_name} connector needs the input {wanted}")
        for group in self.exclusive:
            present = [n for n in group if self.values.get(n) is not None]
            if len(present) > 1:
                raise InputError(
                    f"the {self.type_name} connector takes only one of "
                    f"{', '.join(map(repr, group))} (got {', '.join(map(repr, present))})"
                )

    def run(self) -> dict[str, Any]:
        """Check the inputs and make the call; the output_value, or ConnectorError."""
        self.check()
        return self.call()

    def call(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- helpers for subclasses ------------------------------------------------------------
    def given(self, name: str) -> bool:
        return self.values.get(name) not in (None, "", [], {})

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None else value

    def timeout(self) -> float:
        """The `timeout` input in seconds (positive), else the type's default."""
        raw = self.values.get("timeout")
        if raw is None:
            return self.default_timeout
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise InputError(f"timeout must be a number of seconds, not {raw!r}") from None
        if not value > 0:
            raise InputError(f"timeout must be more than 0 seconds, not {raw!r}")
        return value

    def log(self, text: str, level: str = "INFO", **data: Any) -> None:
        """Append an entry to the execution's log (secrets masked)."""
        if self._log is None:
            return
        self._log(self.scrubber.text(text), level, self.scrubber.json(data))

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block where a cancel (or the execution's timeout) may interrupt blocking I/O."""
        if self._interruptible is None:
            yield
            return
        with self._interruptible():
            yield

    def sleep(self, seconds: float) -> None:
        with self.interruptible():
            time.sleep(seconds)
