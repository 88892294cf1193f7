"""Routes of the REST API under /api/. Each resource module registers its viewset here."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import messages as _messages
from . import schedules as _schedules

router = DefaultRouter()
# router.register("flows", FlowViewSet, basename="flow")   <- one line per resource
router.register("schedules", _schedules.ScheduleViewSet, basename="schedule")
router.register("messages", _messages.MessageViewSet, basename="message")

urlpatterns = [
    path("", include(router.urls)),
]
