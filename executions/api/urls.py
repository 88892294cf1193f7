"""Routes of the REST API under /api/. Each resource module registers its viewset here."""

from __future__ import annotations

from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from . import auth as _auth
from . import connections as _connections
from . import errors as _errors
from . import executions as _executions
from . import files as _files
from . import flows as _flows
from . import messages as _messages
from . import schedules as _schedules
from . import shared_settings as _settings
from . import webhooks as _webhooks

router = DefaultRouter()
# router.register("flows", FlowViewSet, basename="flow")   <- one line per resource
router.register("flows", _flows.FlowViewSet, basename="flow")
router.register("executions", _executions.ExecutionViewSet, basename="execution")
router.register("settings", _settings.SettingViewSet, basename="setting")
router.register("files", _files.FileViewSet, basename="file")
router.register("webhooks", _webhooks.WebhookViewSet, basename="webhook")
router.register("schedules", _schedules.ScheduleViewSet, basename="schedule")
router.register("messages", _messages.MessageViewSet, basename="message")
router.register("connections", _connections.ConnectionViewSet, basename="connection")

urlpatterns = [
    path("auth/token/", _auth.TokenView.as_view(), name="auth-token"),
    path("auth/logout/", _auth.LogoutView.as_view(), name="auth-logout"),
    path("auth/logoutall/", _auth.LogoutAllView.as_view(), name="auth-logoutall"),
    # Before the router: `call` and any sub-path below it, for every method.
    path("webhooks/<str:name>/call", _webhooks.WebhookCallView.as_view(), name="webhook-call"),
    re_path(
        r"^webhooks/(?P<name>[^/]+)/call/(?P<subpath>[\s\S]*)$",
        _webhooks.WebhookCallView.as_view(),
        name="webhook-call-subpath",
    ),
    path("", include(router.urls)),
    # Last: an unknown path below these resources answers a JSON 404, not an HTML page.
    # (Only these prefixes, so that routes other apps add under /api/ stay reachable.)
    re_path(r"^(?P<path>(?:auth|flows|executions|settings|files|webhooks)(?:/[\s\S]*)?)$", _errors.not_found),
]
