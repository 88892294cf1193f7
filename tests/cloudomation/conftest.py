"""Users of the three groups, for flows that read and change records as their user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def user_in(django_user_model: Any) -> Callable[[str | None], Any]:
    """`user_in('Developers')`: a new user of that group (None: of no group)."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    from executions.permissions import sync_groups

    sync_groups(apps)  # the migrations' groups, gone after an earlier test's flush

    def make(group: str | None) -> Any:
        user = django_user_model.objects.create_user(
            f"{(group or 'nobody').lower()}-{django_user_model.objects.count()}",
            password="x" * 12)
        if group:
            user.groups.add(Group.objects.get(name=group))
        return user

    return make
