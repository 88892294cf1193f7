"""Connections in the admin: secrets can be set or removed, and show only as "set"."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from . import registry
from .models import Connection, UnreadableSecrets, misplaced_secret


class ConnectionForm(forms.ModelForm):
    """The stored secrets are never rendered: new ones are typed into a password input."""

    connector_type = forms.ChoiceField(choices=[])
    set_secrets = forms.CharField(
        required=False,
        label="Set secrets",
        # A password input that never renders a value: not even after a failed submit.
        widget=forms.PasswordInput(render_value=False, attrs={"size": 80, "autocomplete": "off"}),
        help_text='A JSON object of secrets to set or replace, e.g. {"password": "..."}. '
                  "Leave empty to keep the stored secrets.",
    )
    remove_secrets = forms.MultipleChoiceField(
        required=False, choices=[], widget=forms.CheckboxSelectMultiple,
        help_text="Secrets to remove.",
    )

    class Meta:
        model = Connection
        fields = ["name", "connector_type", "value", "queue", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind = self.fields["connector_type"]
        remove = self.fields["remove_secrets"]
        assert isinstance(kind, forms.ChoiceField) and isinstance(remove, forms.ChoiceField)
        kind.choices = [(t, t) for t in registry.known_types()]
        stored = self.instance.secrets if self.instance.pk else {}
        remove.choices = [(k, k) for k in sorted(stored)]

    def clean_value(self) -> Any:
        value = self.cleaned_data.get("value")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("value must be a JSON object")
        problem = misplaced_secret(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def clean_set_secrets(self) -> dict[str, Any] | None:
        raw = (self.cleaned_data.get("set_secrets") or "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            # Never echo the text back: it holds secrets.
            raise forms.ValidationError("not valid JSON (expected an object)") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("secrets must be a JSON object")
        return value


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["name", "connector_type", "queue", "secrets_set", "updated_at"]
    list_filter = ["connector_type", "queue"]
    search_fields = ["name", "description"]
    readonly_fields = ["secrets_set", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "connector_type", "value", "queue", "description"]}),
        ("Secrets (encrypted at rest, never shown)",
         {"fields": ["secrets_set", "set_secrets", "remove_secrets"]}),
        ("Times", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="secrets")
    def secrets_set(self, obj: Connection) -> str:
        if isinstance(obj.secrets, UnreadableSecrets):
            return f"cannot be decrypted: {obj.secrets.error}"
        if not obj.secrets:
            return "none"
        return ", ".join(f"{key}: set" for key in obj.secret_keys)

    def save_model(self, request: HttpRequest, obj: Connection, form: Any, change: bool) -> None:
        new = form.cleaned_data.get("set_secrets")
        remove = set(form.cleaned_data.get("remove_secrets") or [])
        unreadable = isinstance(obj.secrets, UnreadableSecrets)
        if new is not None or remove:
            base = {} if unreadable else dict(obj.secrets)
            base.update(new or {})
            obj.secrets = {k: v for k, v in base.items() if k not in remove and v is not None}
        elif unreadable and change:
            # Keep the unreadable token as it is rather than overwrite it with nothing.
            fields = [f.name for f in obj._meta.concrete_fields if f.name not in ("id", "secrets")]
            obj.save(update_fields=fields)
            return
        super().save_model(request, obj, form, change)
