"""Webhooks: other systems call `/api/webhooks/<name>/call[/<sub-path>]` to start a flow.

A call is checked in this order, each refusal a JSON answer:
    unknown or disabled webhook (or one without a flow)   404
    body larger than AUTOMATION["WEBHOOK_MAX_BODY_BYTES"]   413
    a JSON body that does not parse                         400
    missing or wrong key                                    403
    its owner was deleted, deactivated or lost the right    403
      to start executions of the webhook's mode (`orphaned`)
    an unusable Idempotency-Key header                      400
    an Idempotency-Key used before with another request     422
The key comes as `?key=`, the `X-Webhook-Key` header or `"key"` in a JSON object body, and
is compared in constant time with the stored SHA-256 digest (the key itself is not kept).

The flow receives `input_value` = {method, path, query, headers, content_type, json | data |
data_base64}, without the key and without authentication headers: a JSON body (content type
application/json or +json) parsed as `json`, a text body (UTF-8 without NUL) as `data`, any
other body (binary) as `data_base64`. A chunked body (no Content-Length) is read like any
other (automation.chunked). A synchronous call (the default) answers with the
ended execution as JSON: 200 when it ended in success, 500 when it ended in error or was
cancelled, 202 `{"id", "url"}` when it still runs after AUTOMATION["WEBHOOK_WAIT_SECONDS"].
`?async=1` answers 202 at once, and so does a call whose execution was stored while the
broker could not take its message (with its `status` and a `warning`; the reconciler sends
it). A flow shapes its own answer by saving the output key
`webhook_response` = {"status": int, "headers": {...}, "json": ... | "body": ... | "html": str}
(`this.webhook_html_response(html)` saves the last). HTML is served sandboxed
(`Content-Security-Policy: sandbox allow-forms`): its scripts do not run, and it cannot act
with the session of a user of this site, whose origin it shares.

An `Idempotency-Key` header makes a retry safe (executions.engine.idempotency, scope: the
webhook): the same key with the same method, path, query and body within
AUTOMATION_IDEMPOTENCY_SECONDS starts nothing and answers about the first execution, as a
first call would now (waiting, or 202 with `?async=1`), with `Idempotent-Replayed: true`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from ..engine import idempotency
from ..engine.dispatch import send_warning
from ..engine.records import execution_json
from ..engine.start import StartError, start_execution
from ..engine.waiting import wait_for_started
from ..models import Execution, Webhook
from ..permissions import owner_refusal

KEY_HEADER = "X-Webhook-Key"
# Never handed to the flow: they authenticate the caller.
_SECRET_HEADERS = {"x-webhook-key", "authorization", "proxy-authorization", "cookie"}
# Set by the server itself, not by a flow's answer.
_HOP_HEADERS = {
    "connection", "content-length", "transfer-encoding", "keep-alive", "upgrade", "te",
    "trailer", "proxy-authenticate", "proxy-authorization",
}
_TRUE = {"1", "true", "yes", "on"}


def new_key() -> str:
    """A fresh random webhook key (256 bits)."""
    return secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The digest kept in `Webhook.key_hash`. Keys are random, so a plain SHA-256 is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


def rotate_key(webhook: Webhook) -> str:
    """Give the webhook a new key and return it; the old one stops working at once."""
    key = new_key()
    webhook.key_hash = hash_key(key)
    webhook.save(update_fields=["key_hash", "updated_at"])
    return key


def key_matches(webhook: Webhook, given: str) -> bool:
    """Constant-time comparison of a given key with the stored digest."""
    return bool(webhook.key_hash) and hmac.compare_digest(hash_key(given), webhook.key_hash)


class CallRefused(Exception):
    """A webhook call that is answered with an error before any execution starts."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def call(request: HttpRequest, name: str, subpath: str = "") -> HttpResponse:
    """Answer one webhook call: check it, start the flow, wait (or not), answer."""
    try:
        webhook = _find(name)
        body = _read_body(request)
        parsed, is_json = _parse(request, body)
        _check_key(webhook, request, parsed)
        _check_owner(webhook)
        key = _idempotency_key(request)
    except CallRefused as refused:
        return JsonResponse(refused.body, status=refused.status)

    if is_json and isinstance(parsed, dict):
        parsed = {k: v for k, v in parsed.items() if k != "key"}
    input_value: dict[str, Any] = {
        "method": request.method,
        "path": subpath,
        "query": _query(request),
        "headers": {k: v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS},
    }
    if is_json:
        input_value["json"] = parsed
    else:
        input_value.update(_data(body))
    input_value["content_type"] = request.content_type or ""

    assert webhook.flow is not None  # _find refuses webhooks without a flow
    flow = webhook.flow
    try:
        started = idempotency.start_once(
            f"webhook:{webhook.pk}", key, _request_digest(input_value, body, is_json),
            lambda: start_execution(
                flow=flow,
                input_value=input_value,
                mode=webhook.mode,
                user=webhook.user,
                trigger=Execution.Trigger.WEBHOOK,
                trigger_ref=webhook.name,
            ),
        )
    except StartError as exc:  # e.g. its flow was disabled
        return JsonResponse({"detail": f"webhook {name!r} cannot start: {exc.message}"}, status=404)
    except idempotency.IdempotencyError as exc:
        return JsonResponse({idempotency.HEADER: [exc.message]}, status=422)
    response = _respond(request, webhook, started.execution)
    if started.replayed:
        response[idempotency.REPLAYED_HEADER] = "true"
    return response


def _respond(request: HttpRequest, webhook: Webhook, execution: Execution) -> HttpResponse:
    """Answer about a started execution (just now, or by the call whose key this one sent)."""
    warning = send_warning(execution)
    if warning or request.GET.get("async", "").lower() in _TRUE:  # accepted: never a 500
        return _accepted(request, execution, warning)
    # On a queue nobody serves, said within seconds, not after the whole wait.
    answered, warning = wait_for_started(
        execution, float(settings.AUTOMATION["WEBHOOK_WAIT_SECONDS"])
    )
    if answered is None or not answered.is_ended:
        return _accepted(request, execution, warning)
    # The row as the wait read it once it had ended (an ended row does not change); its
    # flow (for the name in the JSON) is the webhook's, which started it.
    answered.flow = webhook.flow
    return _answer(answered)


def _idempotency_key(request: HttpRequest) -> str | None:
    try:
        return idempotency.key_from(request.headers)
    except idempotency.IdempotencyError as exc:
        raise CallRefused(400, {idempotency.HEADER: [exc.message]}) from None


def _request_digest(input_value: dict[str, Any], body: bytes, is_json: bool) -> str:
    """What a retry must repeat: method, path, query and body (the parsed JSON without its
    `key`, or the raw bytes). Not the headers: a retry's differ (dates, trace ids)."""
    asked = {k: input_value[k] for k in ("method", "path", "query")}
    if is_json:
        asked["json"] = input_value["json"]
    else:
        asked["body_sha256"] = hashlib.sha256(body).hexdigest()
    return idempotency.request_digest(asked)


def orphaned(webhook: Webhook) -> str:
    """Why the webhook may not start executions on its owner's behalf any more ("" if it
    may): a webhook acts with its owner's current rights, never with those it was made with."""
    if webhook.user is None:
        return "it has no owner (its creator was deleted)"
    return owner_refusal(webhook.user, webhook.mode)


def _check_owner(webhook: Webhook) -> None:
    reason = orphaned(webhook)
    if reason:
        raise CallRefused(403, {"detail": f"webhook {webhook.name!r} is orphaned: {reason}"})


def _find(name: str) -> Webhook:
    webhook = None
    if "\x00" not in name:  # the database refuses NUL; no webhook can have it
        webhook = Webhook.objects.select_related("flow", "user").filter(name=name).first()
    if webhook is None or not webhook.enabled or webhook.flow is None:
        raise CallRefused(404, {"detail": f"no enabled webhook named {name!r}"})
    return webhook


def _read_body(request: HttpRequest) -> bytes:
    limit = int(settings.AUTOMATION["WEBHOOK_MAX_BODY_BYTES"])
    too_big = CallRefused(413, {"detail": f"the body is larger than {limit} bytes"})
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_big  # refused before reading it
    # Read the stream ourselves: request.body would apply Django's own, different limit.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_big
    return body


def _data(body: bytes) -> dict[str, str]:
    """A body that is not JSON: `data` when it is text (UTF-8 without NUL, which the
    database cannot store in JSON), else `data_base64`, so that no byte is lost."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return {"data_base64": base64.b64encode(body).decode("ascii")}
    return {"data": text}


def _parse(request: HttpRequest, body: bytes) -> tuple[Any, bool]:
    content_type = (request.content_type or "").lower()
    is_json = content_type == "application/json" or content_type.endswith("+json")
    if not is_json:
        return None, False
    if not body.strip():
        return None, True
    try:
        return json.loads(body.decode(request.encoding or "utf-8")), True
    except (ValueError, LookupError) as exc:
        raise CallRefused(400, {"body": [f"invalid JSON: {exc}"]}) from None
    except RecursionError:  # json's decoder has a depth limit: deep nesting is bad input
        raise CallRefused(400, {"body": ["invalid JSON: nested too deeply"]}) from None


def _check_key(webhook: Webhook, request: HttpRequest, parsed: Any) -> None:
    given = request.GET.get("key") or request.headers.get(KEY_HEADER)
    if not given and isinstance(parsed, dict) and isinstance(parsed.get("key"), str):
        given = parsed["key"]
    if not given:
        raise CallRefused(403, {"key": [
            f'a key is needed: ?key=, the {KEY_HEADER} header or "key" in a JSON body'
        ]})
    if not key_matches(webhook, given):
        raise CallRefused(403, {"key": ["wrong key"]})


def _query(request: HttpRequest) -> dict[str, Any]:
    """Query parameters without `key` and `async`; a repeated one becomes a list."""
    return {
        k: (values[0] if len(values) == 1 else values)
        for k, values in request.GET.lists()
        if k not in ("key", "async")
    }


def _accepted(request: HttpRequest, execution: Execution, warning: str = "") -> JsonResponse:
    url = request.build_absolute_uri(reverse("execution-detail", args=[execution.pk]))
    body: dict[str, Any] = {"id": execution.pk, "url": url}
    if warning:
        body.update(status=execution.status, warning=warning)
    response = JsonResponse(body, status=202)
    response["Location"] = url
    return response


def _answer(execution: Execution) -> HttpResponse:
    """The ended execution as JSON, or the answer its flow shaped in `webhook_response`."""
    status = 200 if execution.status == Execution.Status.ENDED_SUCCESS else 500
    output = execution.output_value if isinstance(execution.output_value, dict) else {}
    shaped = output.get("webhook_response")
    if not isinstance(shaped, dict):
        return JsonResponse(execution_json(execution), status=status)

    wanted = shaped.get("status")
    if isinstance(wanted, int) and not isinstance(wanted, bool) and 100 <= wanted <= 599:
        status = wanted
    response: HttpResponse
    if "json" in shaped:
        response = JsonResponse(shaped["json"], status=status, safe=False)
    elif isinstance(shaped.get("html"), str):
        response = HttpResponse(shaped["html"], status=status, content_type="text/html; charset=utf-8")
    elif "body" in shaped:
        body = shaped["body"]
        if isinstance(body, str):
            response = HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")
        else:
            response = JsonResponse(body, status=status, safe=False)
    else:
        response = JsonResponse(execution_json(execution), status=status)
    headers = shaped.get("headers")
    if isinstance(headers, dict):
        for key, value in headers.items():
            key, value = str(key), str(value)
            # A header with a line break would split the answer: drop it.
            if key.lower() in _HOP_HEADERS or any(c in key + value for c in "\r\n\x00"):
                continue
            response[key] = value
    if isinstance(shaped.get("html"), str):  # set last: a flow's headers do not lift it
        response["Content-Security-Policy"] = "sandbox allow-forms"
    return response
