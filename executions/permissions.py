"""Who may do what: Django permissions and the three groups, and the API's permission classes.

Two custom permissions on Execution decide which mode a user may start:
`executions.try_execution` (development) and `executions.run_execution` (productive).
Everything else is Django's model permissions (view/add/change/delete of each record).
Children inherit the mode and the user of their parent (executions.engine.start), so a
permission is checked once, where an execution is started from outside.

Groups (made by a data migration, `sync_groups`):
    Viewers     read everything
    Developers  read everything; edit flows, settings, files and connections; try (development executions) and
                answer the message forms of their own development executions
    Operators   read everything; run and try; cancel executions; edit schedules, webhooks,
                settings and files (the data the flows they run write)
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission, DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.views import APIView

TRY = "executions.try_execution"
RUN = "executions.run_execution"
CANCEL = "executions.change_execution"
ANSWER = "executions.change_message"

#: What each group may read: every record a user of the API or the admin sees.
_READ = [
    "executions.view_flow",
    "executions.view_flowrevision",
    "executions.view_execution",
    "executions.view_executionlog",
    "executions.view_setting",
    "executions.view_file",
    "executions.view_schedule",
    "executions.view_webhook",
    "executions.view_message",
    "connectors.view_connection",
]


def _edit(*models: str) -> list[str]:
    return [
        f"{label}.{action}_{model}"
        for label, model in (m.split(".") for m in models)
        for action in ("add", "change", "delete")
    ]


GROUPS: dict[str, list[str]] = {
    "Viewers": _READ,
    "Developers": [
        *_READ,
        *_edit("executions.flow", "executions.setting", "executions.file", "connectors.connection"),
        TRY,
    ],
    "Operators": [
        *_READ,
        *_edit("executions.schedule", "executions.webhook"),
        # Settings and files are the data productive flows write: the flows Operators run
        # change them as their user (executions.engine.stored).
        *_edit("executions.setting", "executions.file"),
        RUN,
        TRY,
        CANCEL,
        ANSWER,  # answer any message form
    ],
}


def sync_groups(apps: Any, names: dict[str, list[str]] | None = None) -> None:
    """Create the groups and grant their permissions (only adds; idempotent).

    `apps` is a migration's app registry (or `django.apps.apps`). Permissions of models
    that do not exist yet are skipped: a later migration calls this again to grant them.
    """
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, perms in (names or GROUPS).items():
        group, _ = group_model.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".", 1)
            found = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if found is not None:
                group.permissions.add(found)


def start_permission(mode: str) -> str:
    """The permission a user needs to start an execution in `mode`."""
    return RUN if mode == "productive" else TRY


def may_start(user: Any, mode: str) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(start_permission(mode)))


def owner_refusal(owner: Any, mode: str) -> str:
    """Why `owner` may no longer start `mode` executions on behalf of a record they own (a
    webhook, a schedule), "" if they may: such records act with their owner's current
    rights, never with those they were made with."""
    if not owner.is_active:
        return f"its owner {owner.get_username()!r} is deactivated"
    if not may_start(owner, mode):
        return f"its owner {owner.get_username()!r} may no longer start {mode} executions"
    return ""


def may_cancel(user: Any, execution: Any) -> bool:
    """Operators cancel any execution; whoever may start its mode may cancel it too."""
    return bool(
        user
        and user.is_authenticated
        and (user.has_perm(CANCEL) or user.has_perm(start_permission(execution.mode)))
    )


def may_answer(user: Any, message: Any) -> bool:
    """Operators answer any message form; whoever may try answers the forms of their own
    development executions (a Developer's Try waits for its own answer)."""
    if not (user and user.is_authenticated):
        return False
    if user.has_perm(ANSWER):
        return True
    execution = message.execution
    return bool(
        execution is not None
        and execution.mode == "development"
        and execution.user_id == user.pk
        and user.has_perm(TRY)
    )


class MayAnswerMessages(BasePermission):
    """Answering a form: `change_message`, or a development execution of one's own."""

    message = (
        "Answering this form needs the executions.change_message permission "
        "(or it must belong to a development execution you started, with try_execution)."
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.has_perm(ANSWER) or user.has_perm(TRY)))

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        return may_answer(request.user, obj)


class ModelPermissions(DjangoModelPermissions):
    """Django's model permissions, and `view` for reading (DRF lets any user read)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class MayStartExecutions(BasePermission):
    """Starting needs `try` or `run`; which of them the mode needs is checked in the view."""

    message = "You may not start executions (needs executions.try_execution or run_execution)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.has_perm(TRY) or user.has_perm(RUN)))


class HasPermission(BasePermission):
    """Needs one named permission (for actions that DjangoModelPermissions cannot map)."""

    perm = ""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(self.perm))

    @classmethod
    def of(cls, perm: str) -> type[HasPermission]:
        return type(f"Has_{perm.replace('.', '_')}", (cls,), {"perm": perm,
                    "message": f"You need the {perm} permission."})
