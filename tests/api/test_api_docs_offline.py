"""The API docs (Swagger UI at /api/docs/, ReDoc at /api/redoc/) work without internet:
their pages name only this server's static files, and those files ship with the app."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db

ATTRIBUTE_URL = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_load_only_local_static_files(page: str):
    answer = Client().get(page)
    assert answer.status_code == 200
    html = answer.content.decode()

    assert not re.findall(r"https?://[^\s\"'<>]+", html), "the page names another host"
    urls = ATTRIBUTE_URL.findall(html)
    scripts = [url for url in urls if url.endswith(".js")]
    assert scripts, "the page loads its viewer's JavaScript"
    for url in urls:
        assert url.startswith(settings.STATIC_URL), url
        assert finders.find(url.removeprefix(settings.STATIC_URL)), f"{url} is not shipped"
