"""URL routes: health and metrics, the admin, the REST API and its schema."""

from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from automation import health

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", health.metrics, name="metrics"),
    # Browsers ask for /favicon.ico on pages that name no icon (API answers, say): no 404.
    path(
        "favicon.ico",
        RedirectView.as_view(url=lazy(static, str)("executions/favicon.svg"), permanent=False),
    ),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/redoc/",
        # Our template: the package's one loads web fonts from a CDN (no offline docs).
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    path("api/", include("executions.api.urls")),
]

# Unknown paths under /api/ answer JSON, not Django's HTML page.
handler404 = "executions.api.errors.handler404"
