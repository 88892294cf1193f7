"""The Django admin as the engine's user interface: flows (editor, Run and Try, revisions),
executions (live page, Cancel, Run again) and the dashboard on the index.

Each other feature keeps its own admin module (schedules, messages, ...), imported at the end.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse_lazy
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from .. import permissions
from ..engine.start import StartError
from ..models import Execution, Flow, Setting
from . import views as admin_views

admin.site.site_header = "Automation engine"
admin.site.site_title = "Automation engine"
admin.site.index_title = "Dashboard"
# "View site" goes to the dashboard: the engine has no site outside the admin ("/" is a 404).
# Lazy, as the URLconf is still being loaded here; Django reads it as a str.
admin.site.site_url = reverse_lazy("admin:index")  # type: ignore[assignment]
# The index shows the dashboard above the app list (the admin app comes first in
# INSTALLED_APPS, so a template of the same name here would not be found).
admin.site.index_template = "admin/executions/index.html"

EDITOR_JS = (
    "executions/vendor/codemirror/codemirror.js",
    "executions/vendor/codemirror/mode/python/python.js",
    "executions/vendor/codemirror/addon/edit/matchbrackets.js",
    "executions/vendor/codemirror/addon/selection/active-line.js",
    "executions/flow_editor.js",
)
EDITOR_CSS = ("executions/vendor/codemirror/codemirror.css", "executions/admin.css")


def status_badge(status: str | None, url: str = "") -> str:
    if not status:
        return "—"
    label = status.replace("ENDED_", "").title()
    if url:
        return format_html(
            '<a class="status status-{}" href="{}" title="{}">{}</a>', status, url, status, label
        )
    return format_html('<span class="status status-{}" title="{}">{}</span>', status, status, label)


class FlowActionForm(ActionForm):
    """The list's action bar, with an optional JSON inputs box for Run and Try."""

    input_value = forms.CharField(
        required=False,
        label="Inputs",
        widget=forms.TextInput(attrs={"placeholder": '{"key": "value"} (optional)', "size": 30}),
    )


class FlowForm(forms.ModelForm):
    class Meta:
        model = Flow
        fields = [
            "name", "description", "script", "enabled", "timeout", "queue", "error_handler",
            "retry_policy", "recovery",
        ]
        widgets = {
            "script": forms.Textarea(attrs={"class": "flow-script", "rows": 24, "spellcheck": "false"}),
            "description": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A form posted without it (an older page, a script) keeps the flow's recovery.
        if "recovery" in self.fields:
            self.fields["recovery"].required = False

    def clean_recovery(self) -> str:
        return self.cleaned_data.get("recovery") or (self.instance.recovery if self.instance.pk else Flow.Recovery.FAIL)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Try and Run on the flow page post this form (so the editor's unsaved text is what
        # runs): their inputs box is refused here, with the form and the edits kept.
        if START_BUTTON in self.data:
            try:
                admin_views.parse_input(self.data.get(START_INPUT, ""))
            except ValidationError as exc:
                self.add_error(None, f"Inputs: {' '.join(exc.messages)}")
        return cleaned


# The names Try and Run post with the flow form; neither is a field of the flow.
START_BUTTON = "_start"
START_INPUT = "_start_input"


def same_script(form: forms.ModelForm[Flow]) -> bool:
    """Whether the posted form leaves the flow as stored (browsers post CRLF line ends)."""
    changed = set(form.changed_data)
    if not changed <= {"script"}:
        return False
    # Not form.instance: validation has already copied the posted text onto it. The form
    # strips the text, so a trailing newline is no edit either.
    posted = (form.cleaned_data.get("script") or "").replace("\r\n", "\n").strip()
    return posted == (form.initial.get("script") or "").replace("\r\n", "\n").strip()


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    form = FlowForm
    list_display = ["name", "enabled", "revision", "last_execution", "last_run", "updated_at"]
    list_display_links = ["name"]
    list_filter = ["enabled", "queue"]
    search_fields = ["name", "description"]
    readonly_fields = ["revision", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "script"]}),
        ("Running", {"fields": ["enabled", "timeout", "queue", "error_handler", "retry_policy", "recovery"]}),
        ("Record", {"fields": ["revision", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    action_form = FlowActionForm
    actions = ["try_flows", "run_flows"]
    change_form_template = "admin/executions/flow/change_form.html"

    class Media:
        js = EDITOR_JS
        css = {"all": EDITOR_CSS}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flow]:
        latest = Execution.objects.filter(flow=OuterRef("pk")).order_by("-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_id=Subquery(latest.values("pk")[:1]),
                last_status=Subquery(latest.values("status")[:1]),
                last_at=Subquery(latest.values("created_at")[:1]),
            )
        )

    @admin.display(description="Last execution", ordering="last_status")
    def last_execution(self, flow: Any) -> str:
        if not flow.last_id:
            return "—"
        return status_badge(flow.last_status, admin_views.execution_url(flow.last_id))

    @admin.display(description="Last run", ordering="last_at")
    def last_run(self, flow: Any) -> str:
        if not flow.last_at:
            return "never"
        return format_html('<span title="{}">{} ago</span>', flow.last_at, timesince(flow.last_at))

    def has_run_permission(self, request: HttpRequest) -> bool:
        return permissions.may_start(request.user, Execution.Mode.PRODUCTIVE)

    def has_try_permission(self, request: HttpRequest) -> bool:
        return permissions.may_start(request.user, Execution.Mode.DEVELOPMENT)

    def _start_selected(self, request: HttpRequest, queryset: QuerySet[Flow], mode: str) -> HttpResponse | None:
        try:
            inputs = admin_views.parse_input(request.POST.get("input_value", ""))
        except ValidationError as exc:
            self.message_user(request, f"Inputs: {' '.join(exc.messages)}", messages.ERROR)
            return None
        started: list[Execution] = []
        for flow in queryset:
            try:
                started.append(admin_views.start_flow(request, flow, mode, inputs))
            except StartError as exc:
                self.message_user(request, f"{flow.name}: {exc.message}", messages.ERROR)
        if len(started) == 1:
            return HttpResponseRedirect(admin_views.execution_url(started[0]))
        if started:
            self.message_user(request, f"Started {len(started)} {mode} executions.", messages.SUCCESS)
            return HttpResponseRedirect(
                admin_views.changelist_url(mode__exact=mode, trigger__exact=Execution.Trigger.ADMIN)
            )
        return None

    @admin.action(description="Try selected flows (development)", permissions=["try"])
    def try_flows(self, request: HttpRequest, queryset: QuerySet[Flow]) -> HttpResponse | None:
        return self._start_selected(request, queryset, Execution.Mode.DEVELOPMENT)

    @admin.action(description="Run selected flows (productive)", permissions=["run"])
    def run_flows(self, request: HttpRequest, queryset: QuerySet[Flow]) -> HttpResponse | None:
        return self._start_selected(request, queryset, Execution.Mode.PRODUCTIVE)

    def save_model(self, request: HttpRequest, obj: Flow, form: Any, change: bool) -> None:
        if change and START_BUTTON in request.POST and same_script(form):
            return  # Try/Run without edits: start the stored revision, no new one
        obj.revision_author = request.user  # type: ignore[attr-defined]  # read by the revision hook
        super().save_model(request, obj, form, change)
        admin_views.warn_if_unserved(request, obj)

    def response_change(self, request: HttpRequest, obj: Flow) -> HttpResponse:
        """After Try or Run saved the editor's text (when edited), start that revision."""
        if START_BUTTON not in request.POST:
            return super().response_change(request, obj)
        mode = request.POST[START_BUTTON]
        obj.refresh_from_db(fields=["revision"])
        inputs = admin_views.parse_input(request.POST.get(START_INPUT, ""))  # checked by the form
        try:
            if mode not in Execution.Mode.values:
                raise StartError("mode", f"unknown mode {mode!r}")
            execution = admin_views.start_flow(request, obj, mode, inputs)
        except (StartError, PermissionDenied) as exc:
            reason = exc.message if isinstance(exc, StartError) else str(exc)
            self.message_user(request, f"Cannot start {obj.name}: {reason}", messages.ERROR)
            return HttpResponseRedirect(admin_views.flow_url(obj))
        verb = "Running" if mode == Execution.Mode.PRODUCTIVE else "Trying"
        self.message_user(
            request, f"{verb} revision {obj.revision} of {obj.name}: execution {execution.pk} started.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(admin_views.execution_url(execution))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        flow = self.get_object(request, object_id)
        extra: dict[str, Any] = dict(extra_context or {})
        if flow is not None:
            extra.update(
                start_form=admin_views.StartForm(initial={"mode": Execution.Mode.DEVELOPMENT}),
                can_run=self.has_run_permission(request),
                can_try=self.has_try_permission(request),
                start_input=request.POST.get(START_INPUT, ""),
                helpers=admin_views.HELPER_FLOWS,
                revisions=flow.revisions.select_related("author").order_by("-revision")[:8],
                recent_executions=flow.executions.order_by("-id")[:10],
            )
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        def view(func: Any, post_only: bool = False) -> Any:
            bound = partial(func, self)
            return self.admin_site.admin_view(require_POST(bound) if post_only else bound)

        return [
            path("<path:object_id>/start/", view(admin_views.flow_start_view),
                 name="executions_flow_start"),
            path("<path:object_id>/helper/<str:helper>/",
                 view(admin_views.flow_helper_view, post_only=True), name="executions_flow_helper"),
            path("<path:object_id>/revisions/", view(admin_views.flow_revisions_view),
                 name="executions_flow_revisions"),
            path("<path:object_id>/revisions/<int:revision>/", view(admin_views.flow_revision_view),
                 name="executions_flow_revision"),
            path("<path:object_id>/revisions/<int:revision>/restore/",
                 view(admin_views.flow_restore_view, post_only=True), name="executions_flow_restore"),
            *super().get_urls(),
        ]


class LevelFilter(admin.SimpleListFilter):
    """Top-level executions (what a person or a trigger started) or children."""

    title = "level"
    parameter_name = "level"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("top", "Top level only"), ("child", "Children only")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Execution]) -> QuerySet[Execution]:
        if self.value() == "top":
            return queryset.filter(parent__isnull=True)
        if self.value() == "child":
            return queryset.filter(parent__isnull=False)
        return queryset


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    """Executions are records: listed, filtered, watched, cancelled, never edited here."""

    # Compact enough for a 1366 px screen with the sidebar open.
    list_display = ["id", "name_link", "status_colour", "duration_text", "started", "trigger",
                    "mode", "user"]
    list_display_links = None
    list_filter = ["status", "type", "mode", "trigger", LevelFilter, "created_at",
                   ("flow", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "message", "flow__name", "trigger_ref", "user__username"]
    list_select_related = ["user", "flow"]
    list_per_page = 50
    show_full_result_count = False  # a count(*) over a large table on every page is slow

    class Media:
        css = {"all": ("executions/admin.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Execution]:
        # The list never shows the script or the values; do not load them.
        return super().get_queryset(request).defer("script", "input_value", "output_value")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Execution], search_term: str
    ) -> tuple[QuerySet[Execution], bool]:
        if search_term.strip().isdigit():  # an execution id
            return queryset.filter(pk=int(search_term.strip())), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="Started", ordering="started_at")
    def started(self, execution: Execution) -> str:
        if execution.started_at is None:
            return "—"
        local = timezone.localtime(execution.started_at)
        return format_html('<span title="{}">{}</span>', local.isoformat(timespec="seconds"),
                           local.strftime("%Y-%m-%d %H:%M:%S"))

    @admin.display(description="Flow", ordering="name")
    def name_link(self, execution: Execution) -> str:
        return format_html('<a href="{}">{}</a>', admin_views.execution_url(execution), execution.name)

    @admin.display(description="Status", ordering="status")
    def status_colour(self, execution: Execution) -> str:
        return status_badge(execution.status)

    @admin.display(description="Duration")
    def duration_text(self, execution: Execution) -> str:
        return admin_views.format_duration(execution.duration)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # executions are started with Run or Try, never typed in

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting a running row would pull it from under its worker

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return admin_views.execution_detail_view(self, request, object_id)

    def get_urls(self) -> list[URLPattern]:
        def view(func: Any, post_only: bool = False) -> Any:
            bound = partial(func, self)
            return self.admin_site.admin_view(require_POST(bound) if post_only else bound)

        return [
            path("<path:object_id>/live/", view(admin_views.execution_live_view),
                 name="executions_execution_live"),
            path("<path:object_id>/cancel/", view(admin_views.execution_cancel_view, post_only=True),
                 name="executions_execution_cancel"),
            path("<path:object_id>/pause/", view(admin_views.execution_pause_view, post_only=True),
                 name="executions_execution_pause"),
            path("<path:object_id>/resume/", view(admin_views.execution_resume_view, post_only=True),
                 name="executions_execution_resume"),
            path("<path:object_id>/rerun/", view(admin_views.execution_rerun_view, post_only=True),
                 name="executions_execution_rerun"),
            path("<path:object_id>/promote/", view(admin_views.execution_promote_view, post_only=True),
                 name="executions_execution_promote"),
            *super().get_urls(),
        ]


@admin.register(Setting)
class SettingAdmin(admin.ModelAdmin):
    list_display = ["name", "updated_at", "locked_by", "locked_at"]
    list_select_related = ["locked_by"]
    readonly_fields = ["locked_by", "locked_at"]  # a lock is taken and released by flows
    search_fields = ["name"]
