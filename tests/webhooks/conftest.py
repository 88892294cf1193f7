"""Fixtures of the webhook tests."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def caller() -> APIClient:
    """Another system calling a webhook: no user at all."""
    return APIClient()
