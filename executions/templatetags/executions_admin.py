"""Template helpers of the admin: status badges and the dashboard on the index page."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..admin.messages import open_count
from ..admin.views import advanced_links, dashboard

register = template.Library()


@register.filter
def status_badge(status: str | None) -> SafeString | str:
    """A coloured badge for an execution status (the colours live in admin.css)."""
    if not status:
        return "—"
    label = status.replace("ENDED_", "").title()
    return format_html('<span class="status status-{}" title="{}">{}</span>', status, status, label)


@register.inclusion_tag("admin/executions/dashboard.html", takes_context=True)
def automation_dashboard(context: dict[str, Any]) -> dict[str, Any]:
    """Execution figures for users who may see executions; nothing for the others."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("executions.view_execution"):
        return {"show": False}
    return {"show": True, "advanced": advanced_links(user), **dashboard()}


@register.filter
def has_submit(fields: list[Any]) -> bool:
    """Whether a message form has its own submit buttons."""
    return any(getattr(f, "element", "") == "submit" for f in fields)


@register.simple_tag(takes_context=True)
def open_forms_link(context: dict[str, Any]) -> SafeString | str:
    """'Forms (3) /' in the admin header for users who may see message forms."""
    request = context.get("request")
    count = open_count(getattr(request, "user", None))
    if count is None:
        return ""
    url = reverse("admin:executions_message_changelist") + "?status__exact=open"
    return format_html(
        '<a href="{}" id="open-forms" class="open-forms{}">Open forms ({})</a> / ',
        url, " has-open" if count else "", count,
    )
