"""Request bodies sent without Content-Length (`Transfer-Encoding: chunked`) become sized.

gunicorn decodes a chunked body and says so with `wsgi.input_terminated`, but leaves
CONTENT_LENGTH unset, and Django reads a body of unknown length as empty: a webhook would
start its flow with no data, an API call would be refused for a missing field. This WSGI
wrapper reads such a body (at most the largest body any route accepts), hands Django a
stream of known length, and answers 413 past that, as a sized body would be answered.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def sized_bodies(app: WSGIApp, limit: Callable[[], int]) -> WSGIApp:
    """Wrap `app`: a chunked body up to `limit()` bytes reaches it with CONTENT_LENGTH set."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
            most = limit()
            body = environ["wsgi.input"].read(most + 1)
            if len(body) > most:
                answer = json.dumps({"detail": f"the body is larger than {most} bytes"}).encode()
                start_response("413 Request Entity Too Large", [
                    ("Content-Type", "application/json"), ("Content-Length", str(len(answer))),
                    ("Connection", "close"),  # the rest of the body is not read
                ])
                return [answer]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return application
