"""Webhooks in the admin: the call URL and a copyable curl example on each webhook's page.

The key is made by `executions.webhooks` (the same code as the API), stored only as its
digest, and shown once: on the page answered right after creation or a "Rotate key" (the
page is rendered, not redirected to, so the key never passes through the session).
"""

from __future__ import annotations

import shlex
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from .. import webhooks
from ..models import Execution, Webhook
from ..permissions import may_start
from .views import owner_state_text, warn_if_unserved

KEY_PLACEHOLDER = "$WEBHOOK_KEY"


def call_url(request: HttpRequest, webhook: Webhook) -> str:
    return request.build_absolute_uri(reverse("webhook-call", kwargs={"name": webhook.name}))


def curl_example(url: str, key: str = KEY_PLACEHOLDER) -> str:
    """A curl command that calls the webhook with a JSON body."""
    key_header = f"{webhooks.KEY_HEADER}: {key}"
    quoted_key = f'"{key_header}"' if key == KEY_PLACEHOLDER else shlex.quote(key_header)
    return (
        f"curl -X POST {shlex.quote(url)} \\\n"
        f"  -H {quoted_key} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  -d '{\"hello\": \"world\"}'"
    )


class WebhookForm(forms.ModelForm):
    class Meta:
        model = Webhook
        fields = ["name", "flow", "enabled", "mode", "description"]

    def __init__(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_mode(self) -> str:
        # As in the API: nobody sets up a webhook in a mode they could not start themselves.
        mode = str(self.cleaned_data.get("mode") or Execution.Mode.PRODUCTIVE)
        if self.request is not None and not may_start(self.request.user, mode):
            raise forms.ValidationError(f"You may not start {mode} executions.")
        return mode


def key_page(model_admin: WebhookAdmin, request: HttpRequest, webhook: Webhook, key: str,
             created: bool) -> TemplateResponse:
    url = call_url(request, webhook)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Webhook._meta,
        "original": webhook,
        "title": f"Key of webhook {webhook.name}",
        "webhook": webhook,
        "key": key,
        "created": created,
        "call_url": url,
        "curl": curl_example(url, key),
        "change_url": reverse("admin:executions_webhook_change", args=[webhook.pk]),
    }
    response = TemplateResponse(request, "admin/executions/webhook/key.html", context)
    response["Cache-Control"] = "no-store"  # the key must not be kept by a cache
    return response


def rotate_key_view(model_admin: WebhookAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST: a new key (the old one stops working at once), shown on the answer only."""
    webhook = get_object_or_404(Webhook, pk=object_id)
    if not model_admin.has_change_permission(request, webhook):
        raise PermissionDenied
    key = webhooks.rotate_key(webhook)
    model_admin.log_change(request, webhook, "Rotated the key.")
    return key_page(model_admin, request, webhook, key, created=False)


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["name", "flow", "enabled", "mode", "user", "owner_state", "updated_at"]
    list_filter = ["enabled", "mode"]
    search_fields = ["name", "description", "flow__name"]
    readonly_fields = ["user", "owner_state", "created_at", "updated_at"]

    @admin.display(description="owner")
    def owner_state(self, obj: Webhook) -> str:
        """Calls act with the owner's current rights: say when they no longer can."""
        return owner_state_text(webhooks.orphaned(obj))
    change_form_template = "admin/executions/webhook/change_form.html"

    class Media:
        css = {"all": ("executions/admin.css",)}
        js = ("executions/copy.js",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False,
                 **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class RequestForm(form_class):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, request=request, **kw)

        return RequestForm

    def save_model(self, request: HttpRequest, obj: Webhook, form: Any, change: bool) -> None:
        if not change:
            key = webhooks.new_key()
            obj.key_hash = webhooks.hash_key(key)
            obj.user = request.user  # type: ignore[assignment]
            obj._new_key = key  # type: ignore[attr-defined]  # for response_add only
        super().save_model(request, obj, form, change)
        warn_if_unserved(request, obj)

    def response_add(self, request: HttpRequest, obj: Webhook, post_url_continue: str | None = None
                     ) -> HttpResponse:
        key = getattr(obj, "_new_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        return key_page(self, request, obj, key, created=True)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = dict(extra_context or {})
        webhook = self.get_object(request, object_id)
        if webhook is not None:
            url = call_url(request, webhook)
            extra.update(call_url=url, curl=curl_example(url), key_placeholder=KEY_PLACEHOLDER,
                         can_rotate=self.has_change_permission(request, webhook))
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        rotate = self.admin_site.admin_view(require_POST(partial(rotate_key_view, self)))
        return [
            path("<path:object_id>/rotate-key/", rotate, name="executions_webhook_rotate_key"),
            *super().get_urls(),
        ]
