"""Fixtures the admin's tests share."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client


@pytest.fixture
def admin_client_user(db: None) -> tuple[Client, User]:
    """A test client logged in as a new superuser, and that user."""
    user = User.objects.create_superuser("ada", "ada@example.org", "pw-ada-123")
    client = Client()
    client.force_login(user)
    return client, user
