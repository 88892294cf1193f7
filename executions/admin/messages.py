"""Message forms in the admin: the list (open ones first), a page per form that renders
it from its schema and takes the answer, and the same form inline on the waiting
execution's page.

Answers go through `messages.respond`, the one place that validates them against the
form and wakes the waiting flow; its errors come back next to their field on the form's page, never
a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from django.contrib import admin
from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from .. import messages, permissions
from ..models import Execution, Message


@dataclass
class FormField:
    """One element of a message form, ready for the template."""

    key: str
    label: str
    element: str
    value: Any = None
    required: bool = False
    error: str = ""
    description: str = ""
    example: str = ""


def form_fields(message: Message, values: dict[str, Any] | None = None,
                errors: dict[str, str] | None = None) -> list[FormField]:
    """The form's elements in their order, with defaults (or what was typed) and errors."""
    body = message.body or {}
    properties: dict[str, Any] = body.get("properties", {}) or {}
    required = set(body.get("required", []) or [])
    errors = errors or {}
    fields = []
    for key in sorted(properties, key=lambda k: (properties[k].get("order", 0), k)):
        prop = properties[key] if isinstance(properties[key], dict) else {}
        element = prop.get("element", "string")
        if element not in messages.ELEMENT_TYPES:
            element = "string"
        if element == "string" and prop.get("format") == "time":
            element = "time"
        value = values[key] if values is not None and key in values else prop.get("default")
        if element == "password":
            value = None  # never sent back to the browser, not even what was typed
        if element == "markdown" and value is None:  # its text, as Cloudomation's flows give it
            value = prop.get("description") or prop.get("example")
        fields.append(FormField(
            key=key, label=str(prop.get("label") or key), element=element,
            value="" if value is None else value, required=key in required,
            error=errors.get(key, ""),
            description=str(prop.get("description") or "") if element != "markdown" else "",
            example=str(prop.get("example") or "") if element != "markdown" else "",
        ))
    return fields


def parse_answer(message: Message, data: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The response from posted form data: (response, typed values, errors of conversion).

    Empty text fields are left out (the form's defaults and required checks then apply in
    `messages.respond`); a number that does not parse is an error of its field.
    """
    response: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    pressed = data.get("_submit", "")
    properties: dict[str, Any] = (message.body or {}).get("properties", {}) or {}
    for key, prop in properties.items():
        prop = prop if isinstance(prop, dict) else {}
        element = prop.get("element", "string")
        if element == "markdown":
            continue
        if element == "submit":
            if pressed == key:
                response[key] = True
            continue
        if element == "toggle":
            response[key] = typed[key] = data.get(key) in ("on", "true", "1")
            continue
        raw = str(data.get(key, "")) if element in ("string", "password") else str(data.get(key, "")).strip()
        typed[key] = raw
        if raw == "":
            continue
        if element == "number":
            try:
                number = float(raw)
            except ValueError:
                errors[key] = f"{prop.get('label') or key}: enter a number"
                continue
            wants_int = prop.get("type") == "integer" or (number.is_integer() and "." not in raw)
            response[key] = int(number) if wants_int else number
        else:
            response[key] = raw
    return response, typed, errors


def answer(message: Message, data: Any, user: Any) -> tuple[bool, list[FormField], str]:
    """Answer `message` with posted form data: (answered, fields to show again, general error)."""
    response, typed, errors = parse_answer(message, data)
    if errors:
        return False, form_fields(message, typed, errors), ""
    try:
        messages.respond(message, response, user)
    except messages.ResponseError as exc:
        properties = (message.body or {}).get("properties", {}) or {}
        if exc.field in properties:
            return False, form_fields(message, typed, {exc.field: exc.message}), ""
        return False, form_fields(message, typed), exc.message
    except messages.MessageClosed as exc:
        return False, form_fields(message, typed), str(exc)
    return True, [], ""


def can_answer(user: Any, message: Message) -> bool:
    return permissions.may_answer(user, message)  # the API asks the same


def answer_url(message: Message | int) -> str:
    """Where a form posts its answer: the form's own page, so a refused answer is shown
    again there (200) and reloading it shows the form, never a POST-only URL's 405."""
    return message_url(message)


def message_url(message: Message | int) -> str:
    pk = message if isinstance(message, int) else message.pk
    return reverse("admin:executions_message_change", args=[pk])


def inline_forms(request: HttpRequest, execution: Execution) -> tuple[str, str]:
    """The open forms of `execution` as HTML for its page, and their ids ("3,4") so the
    live page can tell when the set changed."""
    open_messages = list(
        Message.objects.filter(execution=execution, status=Message.Status.OPEN).order_by("id")[:5]
    )
    ids = ",".join(str(m.pk) for m in open_messages)
    if not open_messages:
        return "", ids
    html = render_to_string("admin/executions/message/_inline.html", {
        "forms": [
            {"message": m, "fields": form_fields(m), "answer_url": answer_url(m),
             "url": message_url(m), "error": ""}
            for m in open_messages
        ],
        "can_answer": can_answer(request.user, open_messages[0]),  # all of one execution
        "next": reverse("admin:executions_execution_change", args=[execution.pk]),
    }, request=request)
    return html, ids


def open_count(user: Any) -> int | None:
    """How many forms wait for an answer; None for users who may not see messages."""
    if user is None or not getattr(user, "is_staff", False) or not user.has_perm(
        "executions.view_message"
    ):
        return None
    return Message.objects.filter(status=Message.Status.OPEN).count()


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def message_page(model_admin: MessageAdmin, request: HttpRequest, message: Message,
                 fields: list[FormField] | None = None, error: str = "",
                 status: int = 200) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Message._meta,
        "original": message,
        "title": message.subject or f"Message {message.pk}",
        "message_obj": message,
        "fields": fields if fields is not None else form_fields(message),
        "error": error,
        "can_answer": can_answer(request.user, message) and message.status == Message.Status.OPEN,
        "answer_url": answer_url(message),
        "execution_url": reverse("admin:executions_execution_change", args=[message.execution_id])
        if message.execution_id else "",
        "response_rows": sorted((message.response or {}).items())
        if isinstance(message.response, dict) else [],
    }
    return TemplateResponse(request, "admin/executions/message/detail.html", context, status=status)


def message_view(model_admin: MessageAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """A form's page: its text, the form rendered from the schema, or the answer given.
    A POST answers it (`message_answer_view`)."""
    if request.method == "POST":
        return message_answer_view(model_admin, request, object_id)
    message = get_object_or_404(
        Message.objects.select_related("answered_by", "execution"), pk=object_id
    )
    if not model_admin.has_view_permission(request, message):
        raise PermissionDenied
    return message_page(model_admin, request, message)


def message_answer_view(model_admin: MessageAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST: answer the form; on success go back where it was answered (its page or the
    execution's), on a refused answer show the form again with the error by its field.

    The refused answer is a page like any other (200, the form's own URL when posted
    there): the person fixes the field and sends again. A GET (a reload of an older
    /answer/ URL) goes to the form's page.
    """
    if request.method != "POST":
        return HttpResponseRedirect(message_url(int(object_id)) if object_id.isdigit()
                                    else reverse("admin:executions_message_changelist"))
    message = get_object_or_404(
        Message.objects.select_related("answered_by", "execution"), pk=object_id
    )
    if not can_answer(request.user, message):
        raise PermissionDenied(
            "Answering a form needs the change_message permission, or a development "
            "execution of your own."
        )
    answered, fields, error = answer(message, request.POST, request.user)
    if answered:
        flash.success(request, f"Answered “{message.subject or f'message {message.pk}'}”.")
        return HttpResponseRedirect(_safe_next(request, message_url(message)))
    message.refresh_from_db()
    return message_page(model_admin, request, message, fields, error)


class MessageAdmin(admin.ModelAdmin):
    """Message forms are answered, not edited: the change page is the form itself."""

    list_display = ["id", "subject_link", "message_type", "status", "execution_link",
                    "answered_by", "answered_at", "created_at"]
    list_display_links = None
    list_filter = ["status", "message_type"]
    search_fields = ["subject", "text"]
    list_select_related = ["answered_by"]

    class Media:
        css = {"all": ("executions/admin.css",)}

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        open_first = Case(When(status=Message.Status.OPEN, then=Value(0)),
                          default=Value(1), output_field=IntegerField())
        return [open_first.asc(), "-id"]  # open forms first, newest first

    @admin.display(description="Subject", ordering="subject")
    def subject_link(self, message: Message) -> str:
        return format_html('<a href="{}">{}</a>', message_url(message),
                           message.subject or f"message {message.pk}")

    @admin.display(description="Execution", ordering="execution")
    def execution_link(self, message: Message) -> str:
        if not message.execution_id:
            return "—"
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:executions_execution_change", args=[message.execution_id]),
            message.execution_id,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # flows create forms

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return message_view(self, request, object_id)

    def get_urls(self) -> list[URLPattern]:
        answer_view = self.admin_site.admin_view(partial(message_answer_view, self))
        return [
            path("<path:object_id>/answer/", answer_view, name="executions_message_answer"),
            *super().get_urls(),
        ]


if not admin.site.is_registered(Message):
    admin.site.register(Message, MessageAdmin)
