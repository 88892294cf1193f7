"""Links the admin offers answer: "View site" goes to the dashboard, and the icon a browser
asks for (the admin's <link rel="icon">, or /favicon.ico) is a shipped static file."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(admin: Any) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def _shipped(url: str) -> bool:
    return url.startswith(settings.STATIC_URL) and bool(
        finders.find(url.removeprefix(settings.STATIC_URL))
    )


def test_view_site_goes_to_the_dashboard(logged_in: Client):
    page = logged_in.get(reverse("admin:executions_flow_changelist")).content.decode()
    found = re.search(r'<a href="([^"]*)">View site</a>', page)
    assert found, "the admin offers View site"
    assert found.group(1) == reverse("admin:index")
    assert logged_in.get(found.group(1)).status_code == 200


def test_every_admin_page_names_a_shipped_icon(logged_in: Client):
    pages = [
        (Client(), reverse("admin:login")),
        (logged_in, reverse("admin:index")),
        (logged_in, reverse("admin:executions_flow_add")),
    ]
    for client, page in pages:
        answer = client.get(page)
        assert answer.status_code == 200, page
        found = re.search(r'<link rel="icon"[^>]* href="([^"]+)"', answer.content.decode())
        assert found, f"{page} names no icon"
        assert _shipped(found.group(1)), found.group(1)


def test_favicon_ico_leads_to_the_shipped_icon():
    answer = Client().get("/favicon.ico")
    assert answer.status_code == 302
    assert _shipped(answer["Location"]), answer["Location"]
