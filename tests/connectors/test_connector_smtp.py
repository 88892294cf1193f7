"""The SMTP connector against an SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path
from typing import Any

import pytest

from connectors.models import Connection
from executions import engine
from executions.models import Execution

from ..connector_peers import SmtpPeer, self_signed_cert, smtp_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def send(inputs: dict[str, Any]) -> Execution:
    execution = engine.start_execution(type="CONNECTION", connector_type="SMTP",
                                         input_value=inputs)
    ended = engine.wait_for([execution.pk], timeout=30)[0]
    assert ended.is_ended, f"still {ended.status}"
    return ended


def received(peer: SmtpPeer, index: int = 0) -> tuple[Any, email.message.EmailMessage]:
    envelope = peer.messages[index]
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    return envelope, message  # type: ignore[return-value]


def test_a_flow_sends_a_mail_with_text_html_and_cc(make_flow, run_flow):
    with smtp_server() as peer:
        make_flow("mail", """
            def handler(system, this, inputs):
                sent = this.connect(connector_type='SMTP', host='127.0.0.1', port=inputs['port'],
                                    to=['ann@example.org', 'Bob <bob@example.org>'],
                                    cc='carl@example.org', subject='Report ✓',
                                    text='All good.', html='<p>All <b>good</b>.</p>',
                                    **{'from': 'robot@example.org'})
                return {'accepted': sent.get('output_value')['accepted']}
        """)
        ended = run_flow("mail", {"port": peer.port})
        assert ended.status == "ENDED_SUCCESS", ended.message
        assert ended.output_value == {
            "accepted": ["ann@example.org", "bob@example.org", "carl@example.org"]
        }
        envelope, message = received(peer)
    assert envelope.mail_from == "robot@example.org"
    assert envelope.rcpt_tos == ["ann@example.org", "bob@example.org", "carl@example.org"]
    assert message["Subject"] == "Report ✓"
    assert message["To"] == "ann@example.org, bob@example.org"
    assert message["Cc"] == "carl@example.org"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().splitlines() == ["All good."]
    assert html.get_content().splitlines() == ["<p>All <b>good</b>.</p>"]


def test_starttls_with_login_through_a_stored_connection(tmp_path: Path):
    login = ("robot", "smtp-S3cret-pw")
    with smtp_server(tls_dir=tmp_path, login=login) as peer:
        ca = (tmp_path / "cert.pem").read_text()
        Connection.objects.create(
            name="mailer", connector_type="SMTP",
            value={"host": "127.0.0.1", "port": peer.port, "starttls": True, "ca_cert": ca,
                   "login": "robot", "from_": "robot@example.org"},
            secrets={"password": "smtp-S3cret-pw"},
        )
        execution = engine.start_execution(
            type="CONNECTION", connection="mailer",
            input_value={"to": "ann@example.org", "subject": "hi", "text": "hello"},
        )
        ended = engine.wait_for([execution.pk], timeout=30)[0]
        assert ended.status == "ENDED_SUCCESS", ended.message
        assert ended.output_value["accepted"] == ["ann@example.org"]
        assert peer.logins == [login]
        assert received(peer)[1].get_content().splitlines() == ["hello"]


def test_implicit_ssl_checks_the_certificate(tmp_path: Path):
    with smtp_server(tls_dir=tmp_path, implicit_tls=True) as peer:
        ca = (tmp_path / "cert.pem").read_text()
        base = {"host": "127.0.0.1", "port": peer.port, "ssl": True, "from": "a@example.org",
                "to": "b@example.org", "text": "x"}
        trusted = send({**base, "ca_cert": ca})
        assert trusted.status == "ENDED_SUCCESS", trusted.message
        untrusted = send({**base, "ca_cert": self_signed_cert(tmp_path / "..")[2]})
        assert untrusted.status == "ENDED_ERROR"
        assert "certificate verify failed" in untrusted.message
        assert len(peer.messages) == 1


def test_refused_recipients_are_left_out_of_accepted_and_all_refused_is_an_error():
    with smtp_server() as peer:
        base = {"host": "127.0.0.1", "port": peer.port, "from": "a@example.org", "text": "x"}
        partly = send({**base, "to": "ann@example.org, nobody@example.org"})
        assert partly.status == "ENDED_SUCCESS", partly.message
        assert partly.output_value["accepted"] == ["ann@example.org"]
        assert partly.output_value["refused"] == ["nobody@example.org"]

        none = send({**base, "to": "nobody@example.org"})
        assert none.status == "ENDED_ERROR"
        assert "refused every recipient: nobody@example.org (550 5.1.1 no such mailbox)" in (
            none.message
        )


def test_a_wrong_login_ends_in_error_without_the_password(tmp_path: Path):
    with smtp_server(tls_dir=tmp_path, login=("robot", "right-pass")) as peer:
        ended = send({"host": "127.0.0.1", "port": peer.port, "starttls": True,
                      "verify_ssl": False, "login": "robot", "password": "wrong-pass-88",
                      "from": "a@example.org", "to": "b@example.org", "text": "x"})
    assert ended.status == "ENDED_ERROR"
    assert "login failed (535" in ended.message
    assert "wrong-pass-88" not in ended.message + str(ended.input_value)
