"""The email output against a real SMTP server (aiosmtpd): plain, implicit TLS with auth."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from deliverysupport import delivering, free_port, make_alert, queue, wait_until

from connectors.base import OutputContext
from connectors.email_output import EmailConfig, EmailOutput
from daemon.store.sqlite import SqliteStore


class Inbox:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.mails.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"ops", b"pw")
    # handled=False: the server answers (235 or 535) itself.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


@pytest.fixture
def smtps(certificate: tuple[Path, Path]) -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=context,
        authenticator=authenticate,
        auth_required=True,
        # The connection is TLS from the first byte; aiosmtpd only counts STARTTLS as TLS.
        auth_require_tls=False,
    )
    controller.start()
    yield controller.port, inbox
    controller.stop()


async def test_plain_text_and_html_body_with_message_id(
    store: SqliteStore, smtp: tuple[int, Inbox]
) -> None:
    """Subject names the alert; both parts carry the facts intact; Message-ID is the key."""
    port, inbox = smtp
    outputs = {
        "mail": EmailConfig.model_validate(
            {
                "type": "email",
                "endpoint": f"smtp://127.0.0.1:{port}",
                "starttls": False,
                "sender": "auditcorr@example.org",
                "recipients": ["soc@example.org"],
            }
        )
    }
    alert = make_alert()
    queue(store, outputs, [alert])
    async with delivering(store, outputs, timezone="Asia/Tokyo"):
        await wait_until(lambda: inbox.mails)
    (mail,) = inbox.mails
    assert mail["Subject"].startswith("[HIGH] Console login without MFA: alice")
    assert mail["Message-ID"] == f"<{alert.id}@auditcorr>"
    plain = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (plain, html):
        assert "alice がMFAなしでログイン" in part
        assert "2026-11-20 18:00:30 Asia/Tokyo" in part


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_implicit_tls_with_login(
    store: SqliteStore, smtps: tuple[int, Inbox], certificate: tuple[Path, Path]
) -> None:
    """smtps:// with the CA file and credentials delivers; a refused login waits a long backoff."""
    port, inbox = smtps
    settings = {
        "type": "email",
        "endpoint": f"smtps://127.0.0.1:{port}",
        "sender": "auditcorr@example.org",
        "recipients": ["soc@example.org"],
        "username": "ops",
        "ca_file": str(certificate[0]),
    }
    wrong = {"mail": EmailConfig.model_validate({**settings, "password": "nope"})}
    queue(store, wrong, [make_alert(1)])
    async with delivering(store, wrong):
        await wait_until(lambda: "535" in (store.deliveries("pending")[0].last_error or ""))
    (refused,) = store.deliveries("pending")
    assert (refused.due_at - datetime.now(UTC)).total_seconds() > 50
    assert inbox.mails == []
    right = {"mail": EmailConfig.model_validate({**settings, "password": "pw"})}
    second = make_alert(2)
    queue(store, right, [second])
    async with delivering(store, right):
        await wait_until(lambda: inbox.mails)
    (mail,) = inbox.mails
    assert mail["To"] == "soc@example.org"
    assert mail["Message-ID"] == f"<{second.id}@auditcorr>"


def _mail(endpoint: str, **extra: object) -> EmailOutput:
    config = EmailConfig.model_validate(
        {
            "type": "email",
            "endpoint": endpoint,
            "sender": "auditcorr@example.org",
            "recipients": ["soc@example.org"],
            **extra,
        }
    )
    return EmailOutput(config, OutputContext("mail"))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_checks_log_in_over_tls_and_send_no_mail(
    smtps: tuple[int, Inbox], certificate: tuple[Path, Path]
) -> None:
    """doctor's email checks: TLS with the CA file, login; a wrong password fails with a hint."""
    port, inbox = smtps
    settings = {"username": "ops", "ca_file": str(certificate[0])}
    resolved, session = await _mail(f"smtps://127.0.0.1:{port}", **settings, password="pw").checks()
    assert resolved.ok, resolved
    assert session.ok, session
    assert session.detail == "EHLO, TLS, login as ops ok; no mail sent"
    _, refused = await _mail(f"smtps://127.0.0.1:{port}", **settings, password="nope").checks()
    assert not refused.ok
    assert refused.hint == "check 'username' and 'password'"
    assert inbox.mails == []


async def test_checks_report_a_mail_server_that_is_not_there() -> None:
    """A refused port is a failed check naming the server, with a hint."""
    resolved, session = await _mail(f"smtp://127.0.0.1:{free_port()}").checks()
    assert resolved.ok
    assert not session.ok
    assert session.name.startswith("SMTP session with 127.0.0.1:")
    assert "receiver running" in (session.hint or ""), session
