"""The webhook output: the signed alert document, Retry-After, a private CA, doctor's checks."""

from __future__ import annotations

import hashlib
import hmac
import ssl
from pathlib import Path

import pytest
from deliverysupport import (
    Receiver,
    delivering,
    free_port,
    make_alert,
    queue,
    wait_until,
    webhook,
)

from connectors.base import OutputContext
from connectors.outputs.webhook import WebhookConfig, WebhookOutput
from daemon.store.sqlite import SqliteStore


async def test_alert_arrives_once_with_idempotency_key_and_valid_signature(
    store: SqliteStore, receiver: Receiver
) -> None:
    """The body is the alert document, signed over timestamp + body, keyed by the alert id."""
    outputs = webhook(receiver, secret="s3cret", headers={"X-Team": "ops"})
    alert = make_alert()
    queue(store, outputs, [alert])
    async with delivering(store, outputs):
        await receiver.wait_for(1)
        await wait_until(lambda: not store.deliveries("pending"))
    (got,) = receiver.requests
    assert got.json == alert.to_json()
    assert got.json["evidence"][0]["message"] == "alice がMFAなしでログイン"
    assert got.headers["Idempotency-Key"] == alert.id
    assert got.headers["X-Team"] == "ops"
    expected = hmac.new(
        b"s3cret", got.headers["X-Auditcorr-Timestamp"].encode() + b"." + got.body, hashlib.sha256
    ).hexdigest()
    assert got.headers["X-Auditcorr-Signature"] == f"sha256={expected}"
    (sent,) = store.deliveries("sent")
    assert sent.alert_id == alert.id


@pytest.mark.parametrize("when", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_retry_after_forms(when: str) -> None:
    """Retry-After as seconds or as a date in the past both mean: now."""
    from connectors.http import retry_after_secs

    assert retry_after_secs(when) == 0.0


async def test_https_receiver_is_verified_against_the_ca_file(
    store: SqliteStore, certificate: tuple[Path, Path]
) -> None:
    """With ca_file the private CA's receiver is trusted; without it the send fails verification."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    async with Receiver(tls=context) as receiver:
        untrusted = webhook(receiver)
        queue(store, untrusted, [make_alert(1)])
        async with delivering(store, untrusted):
            await wait_until(lambda: store.deliveries("pending")[0].last_error)
        assert "certificate" in (store.deliveries("pending")[0].last_error or "").lower()
        trusted = webhook(receiver, ca_file=str(certificate[0]))
        async with delivering(store, trusted):
            await receiver.wait_for(1)
            await wait_until(lambda: store.deliveries("sent"))


def _output(config: WebhookConfig) -> WebhookOutput:
    return WebhookOutput(config, OutputContext("hook"))


async def test_checks_reach_an_https_receiver_with_its_ca_and_send_nothing(
    certificate: tuple[Path, Path],
) -> None:
    """doctor's webhook checks: resolve, connect, TLS verified with ca_file; no request made."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    async with Receiver(tls=context) as receiver:
        (config,) = webhook(receiver, ca_file=str(certificate[0])).values()
        checks = await _output(config).checks()
        untrusted = await _output(next(iter(webhook(receiver).values()))).checks()
        assert receiver.requests == []
    assert [c.ok for c in checks] == [True, True, True], checks
    assert checks[2].name == "TLS handshake with 127.0.0.1"
    assert [c.ok for c in untrusted] == [True, True, False], untrusted
    assert "ca_file" in (untrusted[2].hint or "")


async def test_checks_report_a_refused_port_with_a_hint() -> None:
    """Nothing listening: the connect check fails and says what to look at."""
    config = WebhookConfig.model_validate(
        {"type": "webhook", "endpoint": f"http://127.0.0.1:{free_port()}/hook"}
    )
    resolved, connected = await _output(config).checks()
    assert resolved.ok
    assert not connected.ok
    assert "receiver running" in (connected.hint or "")
