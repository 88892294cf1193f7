"""Stored connections: a connector type with its inputs, the secret ones encrypted at rest."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from . import crypto, registry
from .base import SECRET_INPUT_NAMES, url_password


class UnreadableSecrets(dict):  # type: ignore[type-arg]
    """Secrets that no key of FIELD_ENCRYPTION_KEY opens: empty, and refused on save.

    Loading such a row must not break a list page; using or overwriting its secrets must
    fail loudly instead of running without them or replacing them with nothing.
    """

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class EncryptedJSONField(models.TextField):
    """A JSON object stored as a Fernet token (text) under FIELD_ENCRYPTION_KEY.

    The column never holds the plain value; dumpdata writes the token, loaddata reads it.
    """

    description = "A JSON object, encrypted at rest"
    # For django-stubs: the Python side is a dict, not the text in the column.
    _pyi_private_set_type: dict[str, Any]  # type: ignore[assignment]
    _pyi_private_get_type: dict[str, Any]  # type: ignore[assignment]

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> dict[str, Any]:
        if value is None or value == "":
            return {}
        try:
            return crypto.decrypt(value)
        except crypto.SecretsUnreadable as exc:
            return UnreadableSecrets(str(exc))

    def to_python(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        if value is None or value == "":
            return {}
        if isinstance(value, str):  # a token, as dumpdata wrote it
            return crypto.decrypt(value)
        raise ValidationError("secrets must be a JSON object")

    def get_prep_value(self, value: Any) -> str:
        if isinstance(value, UnreadableSecrets):
            raise crypto.SecretsUnreadable(
                f"refusing to overwrite secrets that cannot be read: {value.error}"
            )
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ValidationError("secrets must be a JSON object")
        return crypto.encrypt(value)

    def value_to_string(self, obj: Any) -> str:
        return self.get_prep_value(self.value_from_object(obj))


# Input names that hold secrets whatever the connector type: they belong in `secrets`.


class Connection(models.Model):
    """A named connector call: its type, its inputs, and its secret inputs (encrypted).

    A flow calls it with `this.connect(NAME, **overrides)`; the call's inputs are `value`,
    then `secrets`, then the overrides.
    """

    name = models.CharField(max_length=255, unique=True, help_text="Unique name, used to call it.")
    connector_type = models.CharField(
        max_length=32, help_text="REST, SQLPG, SSH, SMTP, GIT or SCP (see the connector registry)."
    )
    value = models.JSONField(
        default=dict, blank=True, help_text="The non-secret inputs (a JSON object)."
    )
    secrets = EncryptedJSONField(
        default=dict, blank=True,
        help_text="Secret inputs such as password or key; encrypted at rest, never shown.",
    )
    queue = models.CharField(
        max_length=100, blank=True, default="",
        help_text="Worker group that runs its calls; empty = the calling execution's group.",
    )
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def secret_keys(self) -> list[str]:
        """Which secrets are set (never their values)."""
        return sorted(self.secrets)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self.connector_type = registry.normalize(self.connector_type)
        if self.connector_type not in registry.known_types():
            errors["connector_type"] = (
                f"unknown connector type {self.connector_type!r}; "
                f"one of {', '.join(registry.known_types())}"
            )
        if not isinstance(self.value, dict):
            errors["value"] = "value must be a JSON object"
        else:
            problem = misplaced_secret(self.value)
            if problem:
                errors["value"] = problem
        if not isinstance(self.secrets, dict):
            errors["secrets"] = "secrets must be a JSON object"
        if errors:
            raise ValidationError(errors)


def misplaced_secret(value: dict[str, Any]) -> str | None:
    """Why `value` (stored in clear) must not hold one of its keys, or None."""
    for key, item in value.items():
        if key in SECRET_INPUT_NAMES:
            return f"{key!r} is a secret: put it under secrets, which are stored encrypted"
        if isinstance(item, str) and url_password(item):
            return f"{key!r} holds a URL with a password: put it under secrets"
    return None


class ExecutionSecret(models.Model):
    """Secret inputs given inline to one CONNECTION execution (e.g. `password=` in
    `this.connect(...)`): kept encrypted apart from its input_value until it has run."""

    execution = models.OneToOneField(
        "executions.Execution", on_delete=models.CASCADE, related_name="connector_secrets"
    )
    secrets = EncryptedJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"secrets of execution {self.execution_id}"
