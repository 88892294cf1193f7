"""Routes of the REST API under /api/. Each resource module registers its viewset here."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

router = DefaultRouter()
# router.register("flows", FlowViewSet, basename="flow")   <- one line per resource

urlpatterns = [
    path("", include(router.urls)),
]
