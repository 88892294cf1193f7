"""Template helpers of the admin: status badges and the dashboard on the index page."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

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
    from ..admin_views import dashboard

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("executions.view_execution"):
        return {"show": False}
    return {"show": True, **dashboard()}
