"""The Connection admin: secrets can be set and removed, and show only as "set"."""

from __future__ import annotations

import pytest

from connectors.models import Connection

pytestmark = pytest.mark.django_db

PASSWORD = "admin-Secret-Passw0rd"


@pytest.fixture
def browser(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="p" * 12))
    return client


def test_a_secret_set_in_the_admin_is_stored_and_shown_only_as_set(browser):
    answer = browser.post("/admin/connectors/connection/add/", {
        "name": "mail", "connector_type": "SMTP", "value": '{"host": "127.0.0.1"}',
        "queue": "", "description": "", "set_secrets": f'{{"password": "{PASSWORD}"}}',
    })
    assert answer.status_code == 302, answer.content.decode()[:2000]
    conn = Connection.objects.get(name="mail")
    assert conn.secrets == {"password": PASSWORD}
    for page in ("/admin/connectors/connection/", f"/admin/connectors/connection/{conn.pk}/change/"):
        html = browser.get(page).content.decode()
        assert "password: set" in html
        assert PASSWORD not in html


def test_saving_without_new_secrets_keeps_them_and_removing_one_drops_it(browser):
    conn = Connection.objects.create(name="db", connector_type="SQLPG", value={"host": "h"},
                                     secrets={"password": PASSWORD, "dsn": "x"})
    url = f"/admin/connectors/connection/{conn.pk}/change/"
    form = {"name": "db", "connector_type": "SQLPG", "value": '{"host": "h2"}', "queue": "",
            "description": ""}
    assert browser.post(url, form).status_code == 302
    assert Connection.objects.get(pk=conn.pk).secrets == {"password": PASSWORD, "dsn": "x"}
    assert browser.post(url, {**form, "remove_secrets": ["dsn"]}).status_code == 302
    assert Connection.objects.get(pk=conn.pk).secrets == {"password": PASSWORD}


def test_a_password_typed_into_value_is_refused_and_bad_json_is_not_echoed(browser):
    answer = browser.post("/admin/connectors/connection/add/", {
        "name": "x", "connector_type": "REST", "value": f'{{"password": "{PASSWORD}"}}',
        "set_secrets": f'{{"token": "{PASSWORD}"',  # not valid JSON
    })
    html = answer.content.decode()
    assert answer.status_code == 200
    assert "is a secret: put it under secrets" in html
    assert "not valid JSON" in html
    assert not Connection.objects.exists()
