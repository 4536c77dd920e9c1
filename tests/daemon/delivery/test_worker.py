"""The delivery worker over a real HTTP receiver: retries, throttling, giving up, restarts."""

from __future__ import annotations

import sys
import types
from typing import Literal

import pytest
import structlog
from deliverysupport import (
    Receiver,
    delivering,
    hang,
    make_alert,
    queue,
    status,
    wait_until,
    webhook,
)
from structlog.testing import capture_logs

from connectors import registry
from connectors.base import Notification, Output
from connectors.config import OutputConfig
from connectors.outputs.webhook import WebhookConfig
from daemon.store.sqlite import SqliteStore


async def test_server_errors_are_retried_until_the_receiver_recovers(
    store: SqliteStore, receiver: Receiver
) -> None:
    """500, 502 and a hang past the timeout are retried; the alert lands once."""
    receiver.script = [status(500), status(502), hang(3)]
    outputs = webhook(receiver)
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await receiver.wait_for(1)
        await wait_until(lambda: store.deliveries("sent"))
    assert len(receiver.requests) == 4
    assert len(receiver.accepted) == 1
    (sent,) = store.deliveries("sent")
    assert sent.attempts == 4


async def test_retry_after_of_a_429_is_honoured(store: SqliteStore, receiver: Receiver) -> None:
    """After 429 with Retry-After: 1 the next attempt waits at least that second."""
    receiver.script = [status(429, {"Retry-After": "1"})]
    outputs = webhook(receiver)
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await receiver.wait_for(1)
    first, second = receiver.requests
    assert second.at - first.at >= 0.95


async def test_a_channel_that_always_fails_ends_failed_and_listed(
    store: SqliteStore, receiver: Receiver
) -> None:
    """Past max_age_secs the row is marked failed with the last error, and kept."""
    receiver.script = [status(500)] * 1000
    outputs = webhook(receiver, max_age_secs=1)
    queue(store, outputs, [make_alert(1), make_alert(2)])
    async with delivering(store, outputs):
        await wait_until(lambda: len(store.deliveries("failed")) == 2)
    failed = store.deliveries("failed")
    assert all("HTTP 500" in (row.last_error or "") for row in failed)
    assert store.deliveries("pending") == []
    assert receiver.accepted == []


async def test_a_rejected_alert_is_failed_without_retries(
    store: SqliteStore, receiver: Receiver
) -> None:
    """A 400 cannot get better by retrying: failed after one attempt."""
    receiver.script = [status(400)]
    outputs = webhook(receiver)
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await wait_until(lambda: store.deliveries("failed"))
    assert len(receiver.requests) == 1
    assert "HTTP 400" in (store.deliveries("failed")[0].last_error or "")


async def test_unreachable_endpoint_keeps_alerts_pending(store: SqliteStore) -> None:
    """Connection refused is transient: rows stay pending with the error and attempts counted."""
    outputs = {
        "hook": WebhookConfig.model_validate(
            {"type": "webhook", "endpoint": "http://127.0.0.1:9/hook", "timeout_secs": 1}
        )
    }
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await wait_until(lambda: store.deliveries("pending")[0].attempts >= 2)
    (row,) = store.deliveries("pending")
    assert row.last_error


async def test_sends_in_flight_never_exceed_concurrency(
    store: SqliteStore, receiver: Receiver
) -> None:
    """Twenty slow answers, concurrency 3: at most three requests at a time, all delivered."""
    receiver.script = [hang(0.2)] * 20
    outputs = webhook(receiver, concurrency=3)
    queue(store, outputs, [make_alert(n) for n in range(20)])
    async with delivering(store, outputs):
        await receiver.wait_for(20)
    assert receiver.most_in_flight == 3
    assert len({r.headers["Idempotency-Key"] for r in receiver.accepted}) == 20


async def test_pending_rows_are_delivered_after_a_restart(
    store: SqliteStore, receiver: Receiver
) -> None:
    """Stopped while sends hang (rows leased), a new service delivers every alert, each once."""
    receiver.script = [hang(30)] * 5
    outputs = webhook(receiver, timeout_secs=30, concurrency=5)
    alerts = [make_alert(n) for n in range(8)]
    queue(store, outputs, alerts)
    async with delivering(store, outputs):
        await wait_until(lambda: receiver.in_flight == 5)
    assert receiver.accepted == []
    receiver.script = []
    async with delivering(store, outputs):
        await receiver.wait_for(8)
        await wait_until(lambda: len(store.deliveries("sent")) == 8)
    keys = [r.headers["Idempotency-Key"] for r in receiver.accepted]
    assert sorted(keys) == sorted(alert.id for alert in alerts)


class NotingConfig(OutputConfig):
    type: Literal["noting"] = "noting"


class NotingOutput(Output):
    """Accepts every alert and logs a line, as a connector does, naming no output."""

    config_model = NotingConfig

    async def send(self, notification: Notification) -> None:
        structlog.get_logger().info("alert_noted", key=notification.key)


async def test_an_outputs_log_lines_carry_its_component_fields(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sends run with the supervisor's component fields, though the dispatcher starts them."""
    module = types.ModuleType("auditcorr_test_noting_output")
    module.NotingOutput = NotingOutput  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(registry.OUTPUTS, "noting", f"{module.__name__}:NotingOutput")
    outputs = {"notes": NotingConfig(endpoint="notes:")}
    queue(store, outputs, [make_alert()])
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with delivering(store, outputs):
            await wait_until(lambda: store.deliveries("sent"))
    (noted,) = [line for line in logs if line["event"] == "alert_noted"]
    assert noted["component_kind"] == "output"
    assert noted["component_type"] == "noting"
    assert noted["component_id"] == "notes"
