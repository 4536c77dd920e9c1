"""The email output against a real SMTP server (aiosmtpd): STARTTLS (the default) with a
private CA and auth, implicit TLS with auth, and plain for a local relay."""

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
from deliverysupport import TrustedCa, delivering, free_port, make_alert, queue, wait_until

from connectors.base import OutputContext
from connectors.outputs.email import EmailConfig, EmailOutput
from daemon.store.sqlite import SqliteStore


class Inbox:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.over_tls: list[bool] = []
        """Per mail: did its session run over TLS?"""
        self.senders: list[str] = []
        """Every MAIL FROM the server saw, also of mails that never reached DATA."""

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.senders.append(address)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.mails.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        self.over_tls.append(session.ssl is not None)
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
def starttls_smtp(trusted_ca: TrustedCa) -> Iterator[tuple[int, Inbox]]:
    """A submission server as a mail provider runs it: STARTTLS required before any other
    command, AUTH offered only after it, and required before MAIL."""
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=trusted_ca.server_context(),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
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


def _config(endpoint: str, **extra: object) -> EmailConfig:
    """An email output to ``endpoint``; every other setting at its default unless in ``extra``."""
    return EmailConfig.model_validate(
        {
            "type": "email",
            "endpoint": endpoint,
            "sender": "auditcorr@example.org",
            "recipients": ["soc@example.org"],
            **extra,
        }
    )


async def test_starttls_by_default_with_the_ca_file_and_login(
    store: SqliteStore, starttls_smtp: tuple[int, Inbox], trusted_ca: TrustedCa
) -> None:
    """smtp:// without a 'starttls' key upgrades with STARTTLS, verifies the server against
    ca_file, logs in over TLS and delivers the alert."""
    port, inbox = starttls_smtp
    config = _config(
        f"smtp://127.0.0.1:{port}", username="ops", password="pw", ca_file=str(trusted_ca.ca_file)
    )
    assert "starttls" not in config.model_fields_set
    outputs = {"mail": config}
    alert = make_alert()
    queue(store, outputs, [alert])
    async with delivering(store, outputs):
        await wait_until(lambda: store.deliveries("sent"))
    (mail,) = inbox.mails
    assert inbox.over_tls == [True]
    assert mail["Subject"] == (
        "[HIGH] Console login without MFA: alice @ 111111111111/ap-northeast-1"
        " at 2026-11-20 09:00:30 UTC"
    )
    plain = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"  rule:  console_login_without_mfa  alert: {alert.id}" in plain.splitlines()
    assert [row.alert_id for row in store.deliveries("sent")] == [alert.id]


async def test_a_certificate_the_ca_file_does_not_vouch_for_sends_nothing(
    store: SqliteStore, starttls_smtp: tuple[int, Inbox], trusted_ca: TrustedCa
) -> None:
    """With the wrong ca_file the STARTTLS handshake fails: no MAIL FROM, no login; the alert
    is retried, then kept as failed with the certificate error."""
    port, inbox = starttls_smtp
    config = _config(
        f"smtp://127.0.0.1:{port}",
        username="ops",
        password="pw",
        ca_file=str(trusted_ca.other_ca_file),
        max_age_secs=1,
    )
    outputs = {"mail": config}
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await wait_until(lambda: store.deliveries("failed"))
    (failed,) = store.deliveries("failed")
    assert "certificate verify failed" in (failed.last_error or ""), failed.last_error
    assert inbox.senders == []


async def test_a_server_without_starttls_gets_nothing_in_clear(
    store: SqliteStore, smtp: tuple[int, Inbox]
) -> None:
    """The default requires STARTTLS: a server that does not offer it sees no MAIL FROM and
    no login; the alert stays pending with the reason."""
    port, inbox = smtp
    outputs = {"mail": _config(f"smtp://127.0.0.1:{port}", username="ops", password="pw")}
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await wait_until(lambda: any(r.attempts >= 2 for r in store.deliveries("pending")))
    (pending,) = store.deliveries("pending")
    assert "STARTTLS" in (pending.last_error or ""), pending.last_error
    assert inbox.senders == []


async def test_a_mail_every_recipient_of_which_is_refused_fails_at_once(
    store: SqliteStore, smtp: tuple[int, Inbox]
) -> None:
    """550 for every recipient cannot get better by retrying: failed after one attempt,
    with the server's answer for each address."""
    port, inbox = smtp
    config = _config(f"smtp://127.0.0.1:{port}", starttls=False, recipients=["nobody@example.org"])
    outputs = {"mail": config}
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await wait_until(lambda: store.deliveries("failed"))
    (failed,) = store.deliveries("failed")
    assert inbox.senders == ["auditcorr@example.org"], "one attempt only"
    assert (
        failed.last_error
        == "SMTP refused every recipient: nobody@example.org: 550 5.1.1 No such user"
    )
    assert inbox.mails == []


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
    return EmailOutput(_config(endpoint, **extra), OutputContext("mail"))


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


async def test_checks_upgrade_with_starttls_by_default(
    starttls_smtp: tuple[int, Inbox], trusted_ca: TrustedCa
) -> None:
    """doctor's email checks on smtp://: STARTTLS verified against ca_file, then login; the
    wrong CA fails with the ca_file hint before any login."""
    port, inbox = starttls_smtp
    login = {"username": "ops", "password": "pw"}
    endpoint = f"smtp://127.0.0.1:{port}"
    _, session = await _mail(endpoint, **login, ca_file=str(trusted_ca.ca_file)).checks()
    assert session.ok, session
    assert session.detail == "EHLO, TLS, login as ops ok; no mail sent"
    _, untrusted = await _mail(endpoint, **login, ca_file=str(trusted_ca.other_ca_file)).checks()
    assert not untrusted.ok
    assert "certificate verify failed" in untrusted.detail
    assert untrusted.hint == "set 'ca_file' to the CA that signed the receiver's certificate"
    assert inbox.senders == []


async def test_checks_fail_on_a_server_without_starttls(smtp: tuple[int, Inbox]) -> None:
    """doctor's email checks with the default starttls fail on a server that offers no
    STARTTLS, and point at the scheme and 'starttls'."""
    port, inbox = smtp
    _, session = await _mail(f"smtp://127.0.0.1:{port}").checks()
    assert not session.ok
    assert session.detail == "SMTP STARTTLS extension not supported by server."
    assert session.hint == "the server answered unexpectedly; check the scheme and 'starttls'"
    assert inbox.senders == []


async def test_checks_report_a_mail_server_that_is_not_there() -> None:
    """A refused port is a failed check naming the server, with a hint."""
    resolved, session = await _mail(f"smtp://127.0.0.1:{free_port()}").checks()
    assert resolved.ok
    assert not session.ok
    assert session.name.startswith("SMTP session with 127.0.0.1:")
    assert "receiver running" in (session.hint or ""), session
