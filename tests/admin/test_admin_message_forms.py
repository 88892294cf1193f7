"""Message forms in the admin, through Django's test client (no browser, no worker):
listed with a count in the header, rendered from their schema, answered in the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from executions.models import Execution, Message

pytestmark = pytest.mark.django_db

FORM = {
    "type": "object",
    "properties": {
        "intro": {"element": "markdown", "label": "Read **this** <script>alert(1)</script>",
                  "order": 0},
        "city": {"label": "City", "element": "string", "type": "string", "order": 1},
        "count": {"label": "How many", "element": "number", "type": "number", "order": 2},
        "urgent": {"label": "Urgent", "element": "toggle", "order": 3},
        "at": {"label": "At", "element": "time", "order": 4},
        "go": {"label": "Send it", "element": "submit", "order": 5},
    },
    "required": ["city", "count"],
}


@pytest.fixture
def client_user(admin_client_user: tuple[Client, User]) -> tuple[Client, User]:
    return admin_client_user


@pytest.fixture
def waiting() -> tuple[Execution, Message]:
    execution = Execution.objects.create(name="asker", queue="default", status="WAITING")
    message = Message.objects.create(execution=execution, subject="Where to?",
                                     text="Pick a city.", body=FORM)
    return execution, message


def answer_url(message: Message) -> str:
    """Forms post to their own page, so a refused answer stays there."""
    return reverse("admin:executions_message_change", args=[message.pk])


def test_the_header_counts_open_forms_and_links_to_them(client_user: Any, waiting: Any) -> None:
    client, _ = client_user
    Message.objects.create(subject="old", status=Message.Status.ANSWERED, body={})
    html = client.get(reverse("admin:index")).content.decode()
    assert 'id="open-forms"' in html
    assert "Open forms (1)" in html


def test_the_list_shows_open_forms_first(client_user: Any, waiting: Any) -> None:
    client, _ = client_user
    Message.objects.create(subject="answered later", status=Message.Status.ANSWERED, body={})
    html = client.get(reverse("admin:executions_message_changelist")).content.decode()
    assert html.index("Where to?") < html.index("answered later")


def test_a_form_page_renders_every_element_and_escapes_markdown(client_user: Any, waiting: Any) -> None:
    client, _ = client_user
    _, message = waiting
    html = client.get(reverse("admin:executions_message_change", args=[message.pk])).content.decode()
    assert "Pick a city." in html
    assert 'name="city"' in html and 'type="time"' in html and 'type="checkbox"' in html
    assert 'name="count"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert 'name="_submit" value="go"' in html and "Send it" in html


def test_answering_in_the_page_stores_the_typed_response(client_user: Any, waiting: Any) -> None:
    client, user = client_user
    _, message = waiting
    response = client.post(answer_url(message), {
        "city": "Vienna", "count": "3", "urgent": "on", "at": "14:30", "_submit": "go",
    })
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == Message.Status.ANSWERED
    assert message.response == {"city": "Vienna", "count": 3, "urgent": True, "at": "14:30",
                                "go": True}
    assert message.answered_by == user
    page = client.get(response["Location"]).content.decode()
    assert "Answered" in page and "Vienna" in page


def test_a_missing_required_field_is_shown_next_to_it(client_user: Any, waiting: Any) -> None:
    client, _ = client_user
    _, message = waiting
    response = client.post(answer_url(message), {"city": "Vienna", "count": ""})
    assert response.status_code == 200  # the form page again, not a redirect
    html = response.content.decode()
    field = html[html.index('data-field="count"'):]
    assert "How many is required" in field[:field.index("</div>")]  # named by its label
    assert "messagelist" not in html  # no green banner for a refused answer
    assert 'value="Vienna"' in html  # what was typed stays
    message.refresh_from_db()
    assert message.status == Message.Status.OPEN


def test_a_number_that_does_not_parse_is_an_error_of_its_field(client_user: Any, waiting: Any) -> None:
    client, _ = client_user
    _, message = waiting
    response = client.post(answer_url(message), {"city": "Vienna", "count": "many"})
    assert response.status_code == 200
    assert "enter a number" in response.content.decode()


def test_a_form_answered_already_says_so_instead_of_failing(client_user: Any, waiting: Any) -> None:
    client, _ = client_user
    _, message = waiting
    Message.objects.filter(pk=message.pk).update(status=Message.Status.EXPIRED)
    response = client.post(answer_url(message), {"city": "Vienna", "count": "1"})
    assert response.status_code == 200
    assert "takes no answer" in response.content.decode()


def test_fields_are_typed_and_required_ones_marked(client_user: Any, waiting: Any) -> None:
    client, _ = client_user
    _, message = waiting
    html = client.get(answer_url(message)).content.decode()
    count = html[html.index('data-field="count"'):]
    count = count[:count.index("</div>")]
    assert 'type="number"' in count and " required" in count and 'class="required-mark"' in count
    at = html[html.index('data-field="at"'):]
    at = at[:at.index("</div>")]
    assert 'type="time"' in at and " required" not in at and "required-mark" not in at


def test_an_older_answer_url_reloaded_goes_to_the_form_instead_of_405(
    client_user: Any, waiting: Any
) -> None:
    client, _ = client_user
    _, message = waiting
    old = reverse("admin:executions_message_answer", args=[message.pk])
    response = client.get(old)
    assert (response.status_code, response["Location"]) == (302, answer_url(message))
    assert client.post(old, {"city": "Vienna", "count": ""}).status_code == 200


def test_an_unknown_time_zone_is_refused_next_to_its_field(client_user: Any) -> None:
    client, _ = client_user
    execution = Execution.objects.create(name="Daily", queue="default", status="WAITING")
    message = Message.objects.create(execution=execution, subject="New daily schedule", body={
        "type": "object",
        "properties": {"timezone": {"label": "Time zone", "element": "string", "type": "string",
                                    "format": "timezone", "order": 1}},
    })
    response = client.post(answer_url(message), {"timezone": "Mars/Olympus"})
    assert response.status_code == 200
    html = response.content.decode()
    field = html[html.index('data-field="timezone"'):]
    assert "Time zone: &#x27;Mars/Olympus&#x27; is not a time zone" in field[:field.index("</div>")]
    assert 'value="Mars/Olympus"' in html
    message.refresh_from_db()
    assert message.status == Message.Status.OPEN
    assert client.post(answer_url(message), {"timezone": "Europe/Vienna"}).status_code == 302


def test_the_waiting_execution_shows_its_form_inline(client_user: Any, waiting: Any) -> None:
    client, _ = client_user
    execution, message = waiting
    url = reverse("admin:executions_execution_change", args=[execution.pk])
    html = client.get(url).content.decode()
    assert f'action="{answer_url(message)}"' in html
    assert f'name="next" value="{url}"' in html
    live = client.get(reverse("admin:executions_execution_live", args=[execution.pk])).json()
    assert live["open_forms"] == str(message.pk) and "Where to?" in live["forms_html"]
    response = client.post(answer_url(message), {"city": "Graz", "count": "2", "next": url})
    assert response["Location"] == url
    assert client.get(reverse("admin:executions_execution_live", args=[execution.pk])).json()[
        "open_forms"] == ""


def test_answering_needs_the_change_message_permission(waiting: Any) -> None:
    _, message = waiting
    user = User.objects.create_user("viewer", password="pw-view-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_message"]))
    client = Client()
    client.force_login(user)
    page = client.get(reverse("admin:executions_message_change", args=[message.pk])).content.decode()
    assert "You may not answer forms" in page
    assert client.post(answer_url(message), {"city": "Vienna", "count": "1"}).status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.OPEN


def test_a_developer_answers_in_the_admin_only_the_forms_of_their_own_try(waiting: Any) -> None:
    _, productive = waiting
    user = User.objects.create_user("dev", password="pw-dev-12345", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_message", "view_execution", "try_execution"])
    )
    own = Execution.objects.create(name="try", queue="default", status="WAITING",
                                   mode="development", user=user)
    mine = Message.objects.create(execution=own, subject="Mine", body=FORM)
    client = Client()
    client.force_login(user)

    page = client.get(reverse("admin:executions_message_change", args=[mine.pk])).content.decode()
    assert "You may not answer forms" not in page
    assert client.post(answer_url(mine), {"city": "Graz", "count": "2"}).status_code == 302
    mine.refresh_from_db()
    assert mine.status == Message.Status.ANSWERED and mine.answered_by == user

    assert client.post(answer_url(productive), {"city": "Graz", "count": "2"}).status_code == 403
    productive.refresh_from_db()
    assert productive.status == Message.Status.OPEN
