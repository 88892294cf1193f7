"""The admin's own pages and the small pieces they share: starting flows, the live view of
an execution, the tree of children, revision diffs and the dashboard figures.

Views here are thin: they check a permission, validate a form, call one service
(`engine.start.start_execution`, `engine.ending.cancel_execution`) and redirect or answer JSON.
The views that change something are POST-only (admin.py wraps them in require_POST).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import redis
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, F, Max, OuterRef, Q, Subquery, TextField, Window
from django.db.models.functions import MD5, Cast
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from django.utils.http import urlencode

from .. import flow_packages, permissions
from ..engine import broker, workers_status
from ..engine.dispatch import send_warning
from ..engine.ending import cancel_execution, pause_execution, resume_execution
from ..engine.queues import celery_queue, default_group
from ..engine.records import shown_inputs, shown_message, shown_outputs
from ..engine.start import StartError, start_execution
from ..engine.waiting import wait_stopped
from ..models import Execution, ExecutionLog, Flow, FlowRevision, Message, Schedule
from .messages import inline_forms

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

# How many log entries one page load or one poll carries; a long log is read in steps.
LOG_PAGE = 500
# The largest tree of children the execution page draws.
TREE_LIMIT = 500

may_start = permissions.may_start  # who may start (or run again) executions of a mode


def execution_url(execution: Execution | int) -> str:
    pk = execution if isinstance(execution, int) else execution.pk
    return reverse("admin:executions_execution_change", args=[pk])


def flow_url(flow: Flow | int) -> str:
    pk = flow if isinstance(flow, int) else flow.pk
    return reverse("admin:executions_flow_change", args=[pk])


def format_duration(seconds: float | None) -> str:
    """'0.42 s', '12.3 s', '4 min 05 s', '2 h 03 min'; '' when it did not start."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def parse_input(text: str) -> dict[str, Any]:
    """The JSON object typed into an input box; empty means no inputs.

    Raises `forms.ValidationError` with the position of a syntax error.
    """
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    if not isinstance(value, dict):
        raise forms.ValidationError('The inputs must be a JSON object, e.g. {"name": "value"}.')
    return value


class StartForm(forms.Form):
    """Run or Try a flow with optional JSON inputs."""

    mode = forms.ChoiceField(choices=Execution.Mode.choices)
    input_value = forms.CharField(
        required=False,
        label="Inputs (JSON)",
        widget=forms.Textarea(
            attrs={"rows": 3, "class": "vLargeTextField json-input", "placeholder": '{"key": "value"}'}
        ),
        help_text="Optional: a JSON object the handler receives as its inputs.",
    )

    def clean_input_value(self) -> dict[str, Any]:
        return parse_input(self.cleaned_data.get("input_value", ""))


def start_flow(request: HttpRequest, flow: Flow, mode: str, inputs: dict[str, Any]) -> Execution:
    """Start `flow` for the admin user; raises PermissionDenied or StartError."""
    if not may_start(request.user, mode):
        raise PermissionDenied(f"You may not start {mode} executions.")
    execution = start_execution(
        flow=flow, input_value=inputs, mode=mode, user=request.user,
        trigger=Execution.Trigger.ADMIN,
    )
    warn_if_not_sent(request, execution)
    return execution


def warn_if_not_sent(request: HttpRequest, execution: Execution) -> None:
    """A warning message when the broker did not take a started execution's message: it is
    accepted all the same (PENDING; the reconciler sends it). Asked once the transaction
    commits, as the message is sent only then (the change form's Run runs in its save's)."""
    def warn() -> None:
        warning = send_warning(execution)
        if warning:
            messages.warning(request, f"Execution {execution.pk}: {warning}.")

    transaction.on_commit(warn)


# --- Flow pages ------------------------------------------------------------------------------


def flow_start_view(model_admin: ModelAdmin[Flow], request: HttpRequest, object_id: str) -> HttpResponse:
    """GET: a page with the inputs box; POST: start the flow and go to its execution.

    The flow page's Run/Try panel posts here too; an invalid input comes back to this
    page with the error under the box and the typed text kept.
    """
    flow = get_object_or_404(Flow, pk=object_id)
    if not model_admin.has_view_permission(request, flow):
        raise PermissionDenied
    initial_mode = request.GET.get("mode", Execution.Mode.DEVELOPMENT)
    if request.method == "POST":
        form = StartForm(request.POST)
        if form.is_valid():
            mode = form.cleaned_data["mode"]
            try:
                execution = start_flow(request, flow, mode, form.cleaned_data["input_value"])
            except StartError as exc:
                form.add_error(None, exc.message)
            else:
                verb = "Running" if mode == Execution.Mode.PRODUCTIVE else "Trying"
                messages.success(request, f"{verb} {flow.name}: execution {execution.pk} started.")
                return HttpResponseRedirect(execution_url(execution))
        status = 400
    else:
        form = StartForm(initial={"mode": initial_mode})
        status = 200
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Flow._meta,
        "original": flow,
        "title": f"Start {flow.name}",
        "form": form,
        "can_run": may_start(request.user, Execution.Mode.PRODUCTIVE),
        "can_try": may_start(request.user, Execution.Mode.DEVELOPMENT),
    }
    return TemplateResponse(request, "admin/executions/flow/start.html", context, status=status)


# The shipped helper flows the flow page offers, and how long the page waits for their form.
HELPER_FLOWS = ("Recurring", "Daily")
HELPER_FORM_WAIT = 2.0


def flow_helper_view(
    model_admin: ModelAdmin[Flow], request: HttpRequest, object_id: str, helper: str
) -> HttpResponse:
    """POST: start the Recurring or Daily helper for this flow and go to its execution.

    The helper asks by message form how to schedule the flow; the page waits a bounded
    moment for that form so it shows at once (the live page shows it when it comes later).
    """
    flow = get_object_or_404(Flow, pk=object_id)
    if not model_admin.has_view_permission(request, flow) or helper not in HELPER_FLOWS:
        raise PermissionDenied
    mode = Execution.Mode.PRODUCTIVE if may_start(request.user, Execution.Mode.PRODUCTIVE) \
        else Execution.Mode.DEVELOPMENT
    if not may_start(request.user, mode):
        raise PermissionDenied("Starting a helper needs the try or run permission.")
    try:
        execution = start_execution(
            flow=helper, input_value={"flow": flow.name}, mode=mode, user=request.user,
            trigger=Execution.Trigger.ADMIN,
        )
    except StartError as exc:
        hint = " (load the shipped helper flows with `manage.py load_flows examples`)" \
            if exc.not_found else ""
        messages.error(request, f"Cannot start the {helper} helper: {exc.message}{hint}")
        return HttpResponseRedirect(flow_url(flow))
    warn_if_not_sent(request, execution)
    deadline = time.monotonic() + HELPER_FORM_WAIT
    while time.monotonic() < deadline:
        if Message.objects.filter(execution_id=execution.pk).exists():
            break
        if Execution.objects.filter(pk=execution.pk, ended_at__isnull=False).exists():
            break
        time.sleep(0.1)
    messages.success(request, f"{helper} helper for {flow.name} started: answer its form below.")
    return HttpResponseRedirect(execution_url(execution))


@dataclass
class DiffLine:
    kind: str  # "add", "del", "ctx", "hunk"
    text: str
    old: int | None = None
    new: int | None = None


def diff_lines(old: str, new: str, context: int = 3) -> list[DiffLine]:
    """A unified diff of two scripts with line numbers on both sides (difflib)."""
    a, b = old.splitlines(), new.splitlines()
    result: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        result.append(
            DiffLine("hunk", f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@")
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                result += [DiffLine("ctx", a[i], i + 1, j1 + k + 1) for k, i in enumerate(range(i1, i2))]
                continue
            if tag in ("replace", "delete"):
                result += [DiffLine("del", a[i], old=i + 1) for i in range(i1, i2)]
            if tag in ("replace", "insert"):
                result += [DiffLine("add", b[j], new=j + 1) for j in range(j1, j2)]
    return result


def _revision_number(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def flow_revisions_view(
    model_admin: ModelAdmin[Flow], request: HttpRequest, object_id: str
) -> HttpResponse:
    """The flow's revisions, newest first, and the diff between any two (?a=N&b=M)."""
    flow = get_object_or_404(Flow, pk=object_id)
    if not model_admin.has_view_permission(request, flow):
        raise PermissionDenied
    revisions = list(flow.revisions.select_related("author").order_by("-revision"))
    by_number = {r.revision: r for r in revisions}
    a = _revision_number(request.GET.get("a"))
    b = _revision_number(request.GET.get("b"))
    if b is None and revisions:
        b = revisions[0].revision
    if a is None and len(revisions) > 1:
        a = revisions[1].revision
    old, new = by_number.get(a or -1), by_number.get(b or -1)
    if old and new and old.revision > new.revision:
        old, new = new, old
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Flow._meta,
        "original": flow,
        "title": f"Revisions of {flow.name}",
        "revisions": revisions,
        "old": old,
        "new": new,
        "diff": diff_lines(old.script, new.script) if old and new else None,
        "can_restore": model_admin.has_change_permission(request, flow),
        "missing": [n for n in (a, b) if n is not None and n not in by_number],
    }
    return TemplateResponse(request, "admin/executions/flow/revisions.html", context)


def flow_revision_view(
    model_admin: ModelAdmin[Flow], request: HttpRequest, object_id: str, revision: int
) -> HttpResponse:
    """One revision's script, who saved it and when, with Restore and a diff to the current."""
    flow = get_object_or_404(Flow, pk=object_id)
    if not model_admin.has_view_permission(request, flow):
        raise PermissionDenied
    rev = get_object_or_404(FlowRevision.objects.select_related("author"), flow=flow, revision=revision)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Flow._meta,
        "original": flow,
        "title": f"{flow.name}, revision {rev.revision}",
        "rev": rev,
        "lines": list(enumerate(rev.script.splitlines(), start=1)),
        "is_current": rev.revision == flow.revision,
        "can_restore": model_admin.has_change_permission(request, flow),
        "executions": flow.executions.filter(flow_revision=rev.revision).order_by("-id")[:10],
    }
    return TemplateResponse(request, "admin/executions/flow/revision.html", context)


def flow_restore_view(
    model_admin: ModelAdmin[Flow], request: HttpRequest, object_id: str, revision: int
) -> HttpResponse:
    """Save an old revision's script as the flow's newest revision (history is kept)."""
    flow = get_object_or_404(Flow, pk=object_id)
    if not model_admin.has_change_permission(request, flow):
        raise PermissionDenied
    rev = get_object_or_404(FlowRevision, flow=flow, revision=revision)
    flow.script = rev.script
    flow.revision_author = request.user  # type: ignore[attr-defined]  # read by the revision hook
    flow.save(update_fields=["script"])
    model_admin.log_change(request, flow, f"Restored revision {rev.revision} as revision {flow.revision}.")
    messages.success(
        request, f"Restored revision {rev.revision} of {flow.name}; it is now revision {flow.revision}."
    )
    return HttpResponseRedirect(flow_url(flow))


# --- Execution pages -------------------------------------------------------------------------


@dataclass
class Node:
    """One execution in the tree of children."""

    id: int
    name: str
    type: str
    status: str
    mode: str
    duration: str
    url: str
    children: list[Node] = field(default_factory=list)


def execution_tree(execution: Execution) -> tuple[list[Node], bool]:
    """The children of `execution`, each with its own children; and whether it was cut short."""
    root_id = execution.root_id_or_self
    rows = list(
        Execution.objects.filter(root_id=root_id)
        .order_by("id")
        .values("id", "parent_id", "name", "type", "status", "mode", "started_at", "ended_at")[
            : TREE_LIMIT * 4
        ]
    )
    by_parent: dict[int | None, list[Any]] = {}
    for row in rows:
        by_parent.setdefault(row["parent_id"], []).append(row)
    now = timezone.now()
    count = 0
    truncated = False

    def build(parent_id: int) -> list[Node]:
        nonlocal count, truncated
        nodes = []
        for row in by_parent.get(parent_id, []):
            if count >= TREE_LIMIT:
                truncated = True
                break
            count += 1
            started, ended = row["started_at"], row["ended_at"]
            seconds = ((ended or now) - started).total_seconds() if started else None
            node = Node(
                id=row["id"], name=row["name"], type=row["type"], status=row["status"],
                mode=row["mode"], duration=format_duration(seconds), url=execution_url(row["id"]),
            )
            node.children = build(row["id"])
            nodes.append(node)
        return nodes

    return build(execution.pk), truncated or len(rows) >= TREE_LIMIT * 4


def warn_if_unserved(request: HttpRequest, record: Any) -> None:
    """After a flow, schedule or webhook is saved: a warning message when no live worker
    serves the queue its executions go to (workers_status.save_warning)."""
    warning = workers_status.save_warning(record)
    if warning:
        messages.warning(request, f"{record}: {warning}")


def owner_state_text(reason: str) -> str:
    """The "owner" column of webhooks and schedules: they act with their owner's current
    rights, so say when the owner no longer has them (`reason`, "" when it has)."""
    return f"orphaned: {reason}" if reason else "ok"


# A log entry longer than this (or of several lines) is shown folded: its first line, and
# the whole of it behind "show all", so one traceback does not push the log off the page.
LOG_FOLD_CHARS = 240
LOG_SUMMARY_CHARS = 160


def log_json(entry: ExecutionLog) -> dict[str, Any]:
    data_text = json.dumps(entry.data, default=str, ensure_ascii=False) if entry.data else ""
    whole = f"{entry.text} {data_text}".strip()
    folded = len(whole) > LOG_FOLD_CHARS or "\n" in whole
    summary = whole.split("\n", 1)[0][:LOG_SUMMARY_CHARS] if folded else ""
    return {
        "id": entry.pk,
        "time": timezone.localtime(entry.created_at).strftime("%H:%M:%S.%f")[:-3],
        "level": entry.level,
        "text": entry.text,
        "data_text": data_text,
        "summary": f"{summary}…" if folded else "",
    }


def _when(value: Any) -> str:
    """A time as the admin's templates show it, for the page's live updates."""
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


def _digest(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()[:12]


def _live_parts(execution: Execution, request: HttpRequest) -> dict[str, tuple[str, Any]]:
    """The parts of the execution page that change, each as (version, content builder).

    The output's version is its MD5 computed by the database (annotated as
    `output_digest`), so an unchanged output is neither loaded nor sent again."""
    ex = {
        "status": execution.status,
        "message": shown_message(execution),
        "started_text": _when(execution.started_at),
        "ended_text": _when(execution.ended_at),
    }
    tree, truncated = execution_tree(execution)
    children_html = render_to_string(
        "admin/executions/execution/_tree.html", {"nodes": tree, "truncated": truncated}
    )
    forms_html, open_forms = _inline_forms(request, execution)
    output_version = (execution.output_digest or "")[:12]  # type: ignore[attr-defined]
    return {
        "execution": (_digest(json.dumps(ex, sort_keys=True)), lambda: ex),
        "output": (output_version, lambda: json.dumps(
            shown_outputs(_with_output(execution)), indent=2, sort_keys=True, default=str
        )),
        "children": (_digest(children_html), lambda: children_html),
        "forms": (_digest(f"{open_forms}\n{forms_html}"), lambda: (forms_html, open_forms)),
    }


def _with_output(execution: Execution) -> Execution:
    """The execution with its output_value loaded (the poll defers it)."""
    execution.output_value = (
        Execution.objects.filter(pk=execution.pk).values_list("output_value", flat=True).first()
        or {}
    )
    return execution


def live_payload(
    execution: Execution, request: HttpRequest, after: int, version: str = ""
) -> dict[str, Any]:
    """What the execution page needs to bring itself up to date since its last poll: the
    log entries after `after`, and of the status, output, children and open forms only
    those whose version differs from the client's `version` (the last answer's). A poll
    with nothing new stays a few hundred bytes however large the output is."""
    logs = list(execution.logs.filter(id__gt=after).order_by("id")[:LOG_PAGE])
    seen = dict(zip(("execution", "output", "children", "forms"), version.split("."), strict=False))
    parts = _live_parts(execution, request)
    payload: dict[str, Any] = {
        "version": ".".join(part_version for part_version, _ in parts.values()),
        "duration": format_duration(execution.duration),
        "ended": execution.is_ended,
        "logs": [log_json(e) for e in logs],
        "more_logs": len(logs) == LOG_PAGE,
    }
    for name, (part_version, build) in parts.items():
        if seen.get(name) == part_version:
            continue
        if name == "forms":
            payload["forms_html"], payload["open_forms"] = build()
        else:
            payload[{"execution": "execution", "output": "output_json",
                     "children": "children_html"}[name]] = build()
    return payload


def execution_live_view(
    model_admin: ModelAdmin[Execution], request: HttpRequest, object_id: str
) -> JsonResponse:
    """JSON for the execution page's polling (about once a second while it runs):
    `?after=<last log id>&version=<the last answer's version>` answers what changed."""
    execution = get_object_or_404(
        Execution.objects.select_related("flow")
        .defer("output_value", "input_value", "script")
        .annotate(output_digest=MD5(Cast("output_value", TextField()))),
        pk=object_id,
    )
    if not model_admin.has_view_permission(request, execution):
        raise PermissionDenied
    after = _revision_number(request.GET.get("after")) or 0
    payload = live_payload(execution, request, after, str(request.GET.get("version", ""))[:100])
    response = JsonResponse(payload)
    response["Cache-Control"] = "no-store"
    return response


def _message_links(execution: Execution) -> list[dict[str, Any]]:
    links = []
    for message in Message.objects.filter(execution=execution).order_by("id")[:20]:
        try:
            url = reverse("admin:executions_message_change", args=[message.pk])
        except NoReverseMatch:  # the messages admin is not installed
            url = ""
        links.append({"message": message, "url": url})
    return links


def execution_detail_view(
    model_admin: ModelAdmin[Execution], request: HttpRequest, object_id: str
) -> HttpResponse:
    """The execution page: status, inputs, outputs, message, live log, children, buttons."""
    execution = get_object_or_404(
        Execution.objects.select_related("flow", "user", "parent", "schedule").annotate(
            output_digest=MD5(Cast("output_value", TextField()))
        ),
        pk=object_id,
    )
    if not model_admin.has_view_permission(request, execution):
        raise PermissionDenied
    total_logs = execution.logs.count()
    logs = list(execution.logs.order_by("-id")[:LOG_PAGE])[::-1]
    tree, truncated = execution_tree(execution)
    revision_url = ""
    if execution.flow_id and execution.flow_revision:
        revision_url = reverse(
            "admin:executions_flow_revision", args=[execution.flow_id, execution.flow_revision]
        )
    can_mode = may_start(request.user, execution.mode)
    # Run again starts the flow's current revision, which may be newer than this one's.
    rerun_revision = execution.flow.revision if execution.flow_id and execution.flow else None
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Execution._meta,
        "original": execution,
        "title": f"Execution {execution.pk}: {execution.name}",
        "execution": execution,
        "duration": format_duration(execution.duration),
        "shown_message": shown_message(execution),
        "input_json": json.dumps(shown_inputs(execution), indent=2, sort_keys=True, default=str),
        "output_json": json.dumps(shown_outputs(execution), indent=2, sort_keys=True, default=str),
        "logs": [log_json(e) for e in logs],
        "logs_cut": total_logs - len(logs),
        "last_log_id": logs[-1].pk if logs else 0,
        "tree": tree,
        "truncated": truncated,
        "revision_url": revision_url,
        "flow_url": flow_url(execution.flow_id) if execution.flow_id else "",
        "message_links": _message_links(execution),
        "can_cancel": permissions.may_cancel(request.user, execution) and not execution.is_ended,
        "can_pause": permissions.may_cancel(request.user, execution)
        and execution.status in (Execution.Status.RUNNING, Execution.Status.WAITING),
        "can_resume": permissions.may_cancel(request.user, execution)
        and execution.status == Execution.Status.PAUSED,
        "can_rerun": can_mode and execution.type in (Execution.Type.FLOW, Execution.Type.SCRIPT),
        "can_promote": execution.mode == Execution.Mode.DEVELOPMENT
        and may_start(request.user, Execution.Mode.PRODUCTIVE),
        "rerun_revision": rerun_revision,
        "live_url": reverse("admin:executions_execution_live", args=[execution.pk]),
        # What this page shows, so that its first poll answers only what changed since.
        "live_version": ".".join(v for v, _ in _live_parts(execution, request).values()),
    }
    context["forms_html"], context["open_forms"] = _inline_forms(request, execution)
    return TemplateResponse(request, "admin/executions/execution/detail.html", context)


def _inline_forms(request: HttpRequest, execution: Execution) -> tuple[str, str]:
    return inline_forms(request, execution)


def _execution_for_action(
    model_admin: ModelAdmin[Execution], request: HttpRequest, object_id: str
) -> Execution:
    execution = get_object_or_404(Execution.objects.select_related("flow"), pk=object_id)
    if not model_admin.has_view_permission(request, execution):
        raise PermissionDenied
    return execution


def execution_cancel_view(
    model_admin: ModelAdmin[Execution], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Cancel an execution and its descendants (permissions.may_cancel: an operator, or whoever
    may start its mode)."""
    execution = _execution_for_action(model_admin, request, object_id)
    if not permissions.may_cancel(request.user, execution):
        raise PermissionDenied(f"You may not cancel {execution.mode} executions.")
    cancelled = cancel_execution(execution, message=f"cancelled by {request.user}")
    if not wait_stopped([execution.pk, *cancelled]):
        messages.warning(
            request, f"Execution {execution.pk} was asked to stop and its code still runs: it "
            "ends ENDED_CANCELLED once stopped (a flow that ignores its cancel is killed).",
        )
    elif cancelled:
        messages.success(
            request, f"Cancelled execution {execution.pk}"
            + (f" and {len(cancelled) - 1} of its descendants." if len(cancelled) > 1 else ".")
        )
    else:
        messages.warning(request, f"Execution {execution.pk} had already ended.")
    return HttpResponseRedirect(execution_url(execution))


def execution_pause_view(
    model_admin: ModelAdmin[Execution], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Pause an execution: it holds at its next flow_api call (who may cancel may pause)."""
    execution = _execution_for_action(model_admin, request, object_id)
    if not permissions.may_cancel(request.user, execution):
        raise PermissionDenied(f"You may not pause {execution.mode} executions.")
    refused = pause_execution(execution)
    if refused is None:
        messages.success(request, f"Paused execution {execution.pk}; Resume lets it go on.")
    else:
        messages.warning(request, refused)
    return HttpResponseRedirect(execution_url(execution))


def execution_resume_view(
    model_admin: ModelAdmin[Execution], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Resume a paused execution."""
    execution = _execution_for_action(model_admin, request, object_id)
    if not permissions.may_cancel(request.user, execution):
        raise PermissionDenied(f"You may not resume {execution.mode} executions.")
    if resume_execution(execution):
        messages.success(request, f"Resumed execution {execution.pk}.")
    else:
        messages.warning(request, f"Execution {execution.pk} is not paused.")
    return HttpResponseRedirect(execution_url(execution))


def execution_rerun_view(
    model_admin: ModelAdmin[Execution], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Start the same flow or script again with the same inputs in the same mode."""
    execution = _execution_for_action(model_admin, request, object_id)
    if not may_start(request.user, execution.mode):
        raise PermissionDenied(f"You may not start {execution.mode} executions.")
    kwargs: dict[str, Any] = {
        "input_value": execution.input_value, "mode": execution.mode, "user": request.user,
        "trigger": Execution.Trigger.ADMIN,
    }
    try:
        if execution.type == Execution.Type.FLOW:
            if execution.flow is None:
                raise StartError("flow", "its flow has been deleted")
            new = start_execution(flow=execution.flow, **kwargs)
        elif execution.type == Execution.Type.SCRIPT:
            new = start_execution(
                type=Execution.Type.SCRIPT, script=execution.script, name=execution.name, **kwargs
            )
        else:
            raise StartError("type", f"a {execution.type} execution cannot be run again here")
    except StartError as exc:
        messages.error(request, f"Cannot run execution {execution.pk} again: {exc.message}")
        return HttpResponseRedirect(execution_url(execution))
    warn_if_not_sent(request, new)
    revision = f" (revision {new.flow_revision})" if new.flow_revision else ""
    messages.success(
        request, f"Started execution {new.pk}{revision}, a new run of execution {execution.pk}."
    )
    return HttpResponseRedirect(execution_url(new))


def execution_promote_view(
    model_admin: ModelAdmin[Execution], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Mark a development execution productive (its mode only; it is not run again)."""
    execution = _execution_for_action(model_admin, request, object_id)
    if not may_start(request.user, Execution.Mode.PRODUCTIVE):
        raise PermissionDenied("Switching to productive needs the run permission.")
    changed = Execution.objects.filter(
        pk=execution.pk, mode=Execution.Mode.DEVELOPMENT
    ).update(mode=Execution.Mode.PRODUCTIVE)
    if changed:
        messages.success(request, f"Execution {execution.pk} is now productive.")
    else:
        messages.warning(request, f"Execution {execution.pk} was already productive.")
    return HttpResponseRedirect(execution_url(execution))


# --- Dashboard -------------------------------------------------------------------------------


def changelist_url(**params: Any) -> str:
    return reverse("admin:executions_execution_changelist") + "?" + urlencode(params)


def dashboard() -> dict[str, Any]:
    """The figures on the admin index: counts by status in the last hour and day, what
    runs now, the latest failures and the slowest flows of the day; each links to a list."""
    now = timezone.now()
    windows = []
    for label, since in (("Last hour", now - timedelta(hours=1)), ("Last 24 hours", now - timedelta(days=1))):
        counts = dict(
            Execution.objects.filter(created_at__gte=since)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        since_param = since.isoformat(timespec="seconds")
        windows.append({
            "label": label,
            "total": sum(counts.values()),
            "url": changelist_url(created_at__gte=since_param),
            "statuses": [
                {
                    "status": status,
                    "count": counts.get(status, 0),
                    "url": changelist_url(created_at__gte=since_param, status__exact=status),
                }
                for status in Execution.Status.values
                if counts.get(status)
            ],
        })
    active = (Execution.Status.PENDING, *Execution.ACTIVE)
    running = Execution.objects.filter(status__in=active)
    day_ago = now - timedelta(days=1)
    slowest = (
        Execution.objects.filter(
            type=Execution.Type.FLOW, created_at__gte=day_ago, ended_at__isnull=False,
            started_at__isnull=False, flow__isnull=False,
        )
        .values("flow_id", "flow__name")
        .annotate(longest=Max(F("ended_at") - F("started_at")), runs=Count("id"))
        .order_by("-longest")[:5]
    )
    return {
        "windows": windows,
        "error_handler_runs": error_handler_runs(day_ago),
        "failing_schedules": failing_schedules(),
        "queues": queue_depths(),
        "workers": live_workers(),
        "flow_packages": flow_packages.installed(),
        "running_count": running.count(),
        "running": [
            {"execution": e, "url": execution_url(e), "duration": format_duration(e.duration)}
            for e in running.filter(parent__isnull=True).order_by("-id")[:8]
        ],
        "running_url": changelist_url(status__in=",".join(active)),
        "failures": [
            {"execution": e, "url": execution_url(e), "message": shown_message(e)}
            for e in Execution.objects.filter(status=Execution.Status.ENDED_ERROR)
            .filter(Q(created_at__gte=now - timedelta(days=7)))
            .order_by("-id")[:8]
        ],
        "failures_url": changelist_url(status__exact=Execution.Status.ENDED_ERROR),
        "slowest": [
            {
                "name": row["flow__name"],
                "runs": row["runs"],
                "longest": format_duration(row["longest"].total_seconds()) if row["longest"] else "",
                "url": changelist_url(flow__id__exact=row["flow_id"], created_at__gte=day_ago.isoformat(timespec="seconds")),
            }
            for row in slowest
        ],
    }


def advanced_links(user: Any) -> list[dict[str, str]]:
    """Pages kept out of the sidebar (a library's own tables), linked for superusers only."""
    if not getattr(user, "is_superuser", False):
        return []
    links = []
    for label, name in (("API tokens (Knox)", "admin:knox_authtoken_changelist"),):
        try:
            links.append({"label": label, "url": reverse(name)})
        except NoReverseMatch:  # not registered in this admin
            continue
    return links


def error_handler_runs(since: Any, limit: int = 5) -> dict[str, Any]:
    """Executions error handlers started since `since`: how many, and the latest few, each
    with the failed execution it handled (trigger_ref). One query: the count is a window
    over the rows before the limit."""
    rows = list(
        Execution.objects.filter(trigger=Execution.Trigger.ERROR_HANDLER, created_at__gte=since)
        .annotate(total=Window(Count("id")))
        .only("id", "name", "status", "trigger_ref", "created_at")
        .order_by("-id")[:limit]
    )
    return {
        "count": rows[0].total if rows else 0,  # type: ignore[attr-defined]
        "url": changelist_url(
            trigger__exact=Execution.Trigger.ERROR_HANDLER,
            created_at__gte=since.isoformat(timespec="seconds"),
        ),
        "latest": [
            {
                "execution": e,
                "url": execution_url(e),
                "failed_url": execution_url(int(e.trigger_ref)) if e.trigger_ref.isdigit() else "",
                "failed": e.trigger_ref,
            }
            for e in rows
        ],
    }


def failing_schedules(limit: int = 8) -> list[dict[str, Any]]:
    """Schedules whose last firing (their newest SCHEDULE execution) ended in error."""
    latest = Execution.objects.filter(
        schedule=OuterRef("pk"), type=Execution.Type.SCHEDULE
    ).order_by("-id")
    rows = (
        Schedule.objects.annotate(
            last_id=Subquery(latest.values("pk")[:1]),
            last_status=Subquery(latest.values("status")[:1]),
            last_message=Subquery(latest.values("message")[:1]),
        )
        .filter(last_status=Execution.Status.ENDED_ERROR)
        .order_by("name")[:limit]
    )
    return [
        {
            "name": s.name,
            "url": reverse("admin:executions_schedule_change", args=[s.pk]),
            "execution_url": execution_url(s.last_id),  # type: ignore[attr-defined]
            "message": s.last_message or "",  # type: ignore[attr-defined]
        }
        for s in rows
    ]


# How long the dashboard waits for the broker before it shows depths as unknown.
BROKER_TIMEOUT = 0.5


def _queue_names() -> list[str]:
    groups = {default_group(), *Flow.objects.values_list("queue", flat=True).distinct()}
    # A flow without a group ("") runs on the default group's queues: one row each.
    return sorted({celery_queue(g or "", m) for g in groups for m in Execution.Mode.values})


def queue_depths() -> dict[str, Any]:
    """Messages waiting in each Celery queue (`<group>.<mode>` of every group a flow names),
    asked of the broker by `executions.engine.broker` (LLEN per priority list on Redis) within
    BROKER_TIMEOUT."""
    depths = broker.queue_depths(_queue_names(), timeout=BROKER_TIMEOUT)
    unknown = any(depth is None for depth in depths.values())
    rows = []
    for name, depth in depths.items():
        _group, _, mode = name.rpartition(".")
        rows.append({"name": name, "depth": "?" if depth is None else depth, "url": changelist_url(
            status__exact=Execution.Status.PENDING, mode__exact=mode)})
    return {"error": "the broker did not answer in time" if unknown else "", "rows": rows}


def live_workers() -> dict[str, Any]:
    """The queues live workers consume and how each isolates flow code, from the reports
    workers write every heartbeat (`workers_status`): two Redis reads, never an inspect
    broadcast, which would keep the page waiting for the slowest worker."""
    try:
        reports = workers_status.live_workers()
        isolation = sorted(workers_status.worker_isolation().items())
    except redis.RedisError:
        return {"known": False, "queues": [], "isolation": []}
    queues = sorted({name for served in reports.values() for name in served})
    return {"known": True, "queues": queues, "isolation": isolation}
