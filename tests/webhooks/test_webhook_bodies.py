"""Webhook bodies arrive whole or are refused: chunked bodies (no Content-Length) are read
under the same cap as others, and a binary body reaches the flow base64-encoded.

Through the real web server (gunicorn as the Procfile starts it): Django's test client
never sends a chunked body, gunicorn does hand one over."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ..web_server import WebServer, running_web

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

CAP = 1_500_000
DIGEST = """
import base64
import hashlib

def handler(system, this):
    inputs = this.get('input_value')
    if 'data_base64' in inputs:
        raw, kind = base64.b64decode(inputs['data_base64']), 'data_base64'
    elif 'data' in inputs:
        raw, kind = inputs['data'].encode('utf-8'), 'data'
    else:
        raw, kind = repr(inputs.get('json')).encode(), 'json'
    return {'kind': kind, 'size': len(raw), 'sha256': hashlib.sha256(raw).hexdigest(),
            'content_type': inputs['content_type']}
"""


@pytest.fixture(scope="module")
def web(worker_process: Any, static_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with running_web(
        tmp_path_factory.mktemp("web"), static_root, AUTOMATION_WEBHOOK_MAX_BODY_BYTES=str(CAP)
    ) as server:
        yield server


@pytest.fixture
def hook(api: Any, make_flow: Any) -> str:
    make_flow("digest", DIGEST)
    answer = api.post("/api/webhooks/", {"name": "bodies", "flow": "digest", "enabled": True},
                      format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()["key"]


def _chunks(body: bytes, size: int = 65_536) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def _call(web: WebServer, key: str, data: Any, content_type: str) -> requests.Response:
    return requests.post(
        f"{web.url}/api/webhooks/bodies/call", data=data, timeout=60,
        headers={"X-Webhook-Key": key, "Content-Type": content_type},
    )


def test_a_chunked_body_of_1_2_mb_reaches_the_flow_whole(web: WebServer, hook: str) -> None:
    body = (b"line of text\n" * 100_000)[:1_200_000]
    answer = _call(web, hook, _chunks(body), "text/plain")  # a generator: chunked, no length
    assert answer.status_code == 200, answer.text
    out = answer.json()["output_value"]
    assert out == {"kind": "data", "size": 1_200_000,
                   "sha256": hashlib.sha256(body).hexdigest(), "content_type": "text/plain"}


def test_a_chunked_body_over_the_cap_is_refused_413(web: WebServer, hook: str) -> None:
    answer = _call(web, hook, _chunks(b"x" * (CAP + 10)), "text/plain")
    assert answer.status_code == 413
    assert answer.json() == {"detail": f"the body is larger than {CAP} bytes"}


def test_a_chunked_json_body_is_parsed(web: WebServer, hook: str) -> None:
    answer = _call(web, hook, _chunks(b'{"order": 7}', 4), "application/json")
    assert answer.status_code == 200, answer.text
    assert answer.json()["output_value"]["kind"] == "json"
    assert answer.json()["input_value"]["json"] == {"order": 7}


@pytest.mark.parametrize("body, content_type", [
    (b"ab\x00cd", "text/plain"),
    (bytes(range(256)) * 10, "application/octet-stream"),
])
def test_a_binary_body_reaches_the_flow_base64_encoded_with_its_content_type(
    web: WebServer, hook: str, body: bytes, content_type: str
) -> None:
    answer = _call(web, hook, body, content_type)
    assert answer.status_code == 200, answer.text
    execution = answer.json()
    assert execution["output_value"] == {
        "kind": "data_base64", "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
        "content_type": content_type,
    }
    assert execution["input_value"]["data_base64"] == base64.b64encode(body).decode()
    assert "data" not in execution["input_value"]
