"""The mqtt output against a real mosquitto: topics, user property, retained latest, outages;
mqtts:// with a private CA and a password file."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from deliverysupport import (
    Mosquitto,
    TrustedCa,
    delivering,
    free_port,
    make_alert,
    queue,
    wait_until,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from connectors.base import OutputContext
from connectors.outputs.mqtt import MqttConfig, MqttOutput
from daemon.store.sqlite import SqliteStore


@pytest.fixture
async def subscriber(mosquitto: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto.port, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        await client.subscribe("auditcorr/#", qos=1)
        yield client


async def collect(
    client: aiomqtt.Client, count: int, within_secs: float = 15
) -> list[aiomqtt.Message]:
    got: list[aiomqtt.Message] = []
    async with asyncio.timeout(within_secs):
        async for message in client.messages:
            got.append(message)
            if len(got) == count:
                return got
    return got


def watcher(mosquitto: Mosquitto) -> aiomqtt.Client:
    """A subscriber whose session (and QoS 1 backlog) the broker keeps while it is away."""
    expiry = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    expiry.SessionExpiryInterval = 3600
    return aiomqtt.Client(
        "127.0.0.1",
        mosquitto.port,
        identifier="watcher",
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=expiry,
    )


def key_of(message: aiomqtt.Message) -> str:
    assert message.properties is not None
    return dict(message.properties.UserProperty)["idempotency-key"]


async def test_alert_published_on_its_topic_with_key_and_retained_latest(
    store: SqliteStore, mosquitto: Mosquitto, subscriber: aiomqtt.Client
) -> None:
    """Topic from the template, JSON document as payload, alert id as user property."""
    outputs = {
        "broker": MqttConfig.model_validate(
            {
                "type": "mqtt",
                "endpoint": f"mqtt://127.0.0.1:{mosquitto.port}",
                "latest_topic": "auditcorr/latest/{rule}",
                "qos": 1,
            }
        )
    }
    alert = make_alert()
    queue(store, outputs, [alert])
    async with delivering(store, outputs):
        first, latest = await collect(subscriber, 2)
    assert str(first.topic) == "auditcorr/alerts/high/console_login_without_mfa"
    assert orjson.loads(first.payload) == alert.to_json()  # type: ignore[arg-type]
    assert key_of(first) == alert.id
    assert str(latest.topic) == "auditcorr/latest/console_login_without_mfa"
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as late:
        await late.subscribe("auditcorr/latest/#")
        (retained,) = await collect(late, 1)
    assert retained.retain


async def test_broker_outage_delays_alerts_but_loses_and_doubles_none(
    store: SqliteStore, mosquitto: Mosquitto
) -> None:
    """Broker down while alerts are raised, then up on the same port: each alert is
    published once and arrives.

    The subscriber may see a repeat the daemon did not send: a broker stopped before it
    stored the subscriber's acknowledgement delivers that QoS 1 message again after the
    restart (receivers drop repeats by key).
    """
    outputs = {
        "broker": MqttConfig.model_validate(
            {"type": "mqtt", "endpoint": f"mqtt://127.0.0.1:{mosquitto.port}", "timeout_secs": 2}
        )
    }
    alerts = [make_alert(n) for n in range(10)]
    async with delivering(store, outputs) as service:
        async with watcher(mosquitto) as client:
            await client.subscribe("auditcorr/#", qos=1)
            queue(store, outputs, alerts[:3])
            got = await collect(client, 3)
        mosquitto.stop()
        queue(store, outputs, alerts[3:])
        await wait_until(lambda: any(r.attempts >= 2 for r in store.deliveries("pending")))
        mosquitto.start()
        await wait_until(lambda: len(store.deliveries("sent")) == 10)
        published = service.workers["broker"].stats.messages
    keys = {key_of(message) for message in got}
    async with watcher(mosquitto) as client, asyncio.timeout(15):
        async for message in client.messages:
            keys.add(key_of(message))
            if len(keys) == len(alerts):
                break
    assert keys == {alert.id for alert in alerts}
    assert published == len(alerts)


def test_username_without_password_is_a_config_error() -> None:
    """Credentials come in pairs."""
    with pytest.raises(ValueError, match="both or neither"):
        MqttConfig.model_validate(
            {"type": "mqtt", "endpoint": "mqtt://broker:1883", "username": "auditcorr"}
        )


def test_endpoint_scheme_is_checked() -> None:
    """An http:// endpoint for MQTT names the forms it accepts."""
    with pytest.raises(ValueError, match="mqtt://host:1883"):
        MqttConfig.model_validate({"type": "mqtt", "endpoint": "http://broker:1883"})


async def test_checks_connect_to_the_broker_and_publish_nothing(
    mosquitto: Mosquitto, subscriber: aiomqtt.Client
) -> None:
    """doctor's mqtt checks connect and disconnect; the subscriber gets no message."""
    config = MqttConfig.model_validate(
        {"type": "mqtt", "endpoint": f"mqtt://127.0.0.1:{mosquitto.port}", "client_id": "doctor"}
    )
    resolved, connected = await MqttOutput(config, OutputContext("broker")).checks()
    assert resolved.ok, resolved
    assert connected.ok, connected
    assert connected.name == f"MQTT connect to 127.0.0.1:{mosquitto.port}"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await anext(aiter(subscriber.messages))


async def test_checks_report_a_broker_that_is_not_there() -> None:
    """A refused connection is a failed check naming the broker, with a hint."""
    config = MqttConfig.model_validate(
        {"type": "mqtt", "endpoint": f"mqtt://127.0.0.1:{free_port()}"}
    )
    resolved, connected = await MqttOutput(config, OutputContext("broker")).checks()
    assert resolved.ok
    assert not connected.ok
    assert "receiver running" in (connected.hint or ""), connected


# -- mqtts:// and a password file ----------------------------------------------

USERS = {"auditcorr": "s3cret", "watcher": "w4tch"}


@pytest.fixture
def secure_mosquitto(tmp_path: Path, trusted_ca: TrustedCa) -> Iterator[Mosquitto]:
    """A broker as a site runs it: TLS only, logins from a password file, no anonymous."""
    broker = Mosquitto(tmp_path, tls=trusted_ca, users=USERS)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def secure_subscriber(
    secure_mosquitto: Mosquitto, trusted_ca: TrustedCa
) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1",
        secure_mosquitto.port,
        username="watcher",
        password=USERS["watcher"],
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=ssl.create_default_context(cafile=trusted_ca.ca_file),
    ) as client:
        await client.subscribe("auditcorr/#", qos=1)
        yield client


def mqtts(broker: Mosquitto, **extra: Any) -> MqttConfig:
    """An mqtt output to the broker's TLS listener; other settings at their defaults."""
    return MqttConfig.model_validate(
        {"type": "mqtt", "endpoint": f"mqtts://127.0.0.1:{broker.port}", **extra}
    )


async def test_mqtts_with_the_ca_file_and_login_delivers(
    store: SqliteStore,
    secure_mosquitto: Mosquitto,
    secure_subscriber: aiomqtt.Client,
    trusted_ca: TrustedCa,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mqtts:// verifies the broker against ca_file and logs in with the password from env:."""
    monkeypatch.setenv("MQTT_PASSWORD", USERS["auditcorr"])
    config = mqtts(
        secure_mosquitto,
        username="auditcorr",
        password="env:MQTT_PASSWORD",
        ca_file=str(trusted_ca.ca_file),
    )
    outputs = {"broker": config}
    alert = make_alert()
    queue(store, outputs, [alert])
    async with delivering(store, outputs):
        (message,) = await collect(secure_subscriber, 1)
    assert str(message.topic) == "auditcorr/alerts/high/console_login_without_mfa"
    assert key_of(message) == alert.id


@pytest.mark.parametrize(
    "login",
    [{}, {"username": "auditcorr", "password": "wrong"}],
    ids=["no-login", "wrong-password"],
)
async def test_a_refused_login_waits_a_long_backoff(
    store: SqliteStore,
    secure_mosquitto: Mosquitto,
    secure_subscriber: aiomqtt.Client,
    trusted_ca: TrustedCa,
    login: dict[str, str],
) -> None:
    """The broker takes only its users: without a login or with a wrong password the alert
    stays queued with the broker's reason, and is retried after the long auth backoff."""
    outputs = {"broker": mqtts(secure_mosquitto, ca_file=str(trusted_ca.ca_file), **login)}
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await wait_until(lambda: store.deliveries("pending")[0].last_error)
    (refused,) = store.deliveries("pending")
    assert refused.last_error == "MQTT broker refused this client: [code:135] Not authorized"
    assert (refused.due_at - datetime.now(UTC)).total_seconds() > 50
    with pytest.raises(TimeoutError):
        await collect(secure_subscriber, 1, within_secs=0.5)


async def test_a_client_that_does_not_trust_the_ca_sends_nothing(
    store: SqliteStore, secure_mosquitto: Mosquitto, secure_subscriber: aiomqtt.Client
) -> None:
    """Without ca_file the system CAs do not vouch for the broker: the handshake fails, the
    alert is retried, then kept as failed with the certificate error."""
    login = {"username": "auditcorr", "password": USERS["auditcorr"]}
    outputs = {"broker": mqtts(secure_mosquitto, max_age_secs=1, **login)}
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await wait_until(lambda: store.deliveries("failed"))
    (failed,) = store.deliveries("failed")
    assert "certificate verify failed" in (failed.last_error or ""), failed.last_error
    with pytest.raises(TimeoutError):
        await collect(secure_subscriber, 1, within_secs=0.5)


async def test_checks_report_login_and_certificate_against_a_secure_broker(
    secure_mosquitto: Mosquitto, trusted_ca: TrustedCa
) -> None:
    """doctor's mqtt checks: TLS and login pass; a wrong password and an untrusted CA each
    fail with the hint that fixes them."""
    trusted = {"ca_file": str(trusted_ca.ca_file)}
    login = {"username": "auditcorr", "password": USERS["auditcorr"]}
    wrong = {**login, "password": "wrong"}
    untrusted = {"ca_file": str(trusted_ca.other_ca_file)}
    results = {
        name: (await MqttOutput(mqtts(secure_mosquitto, **extra), OutputContext("b")).checks())[1]
        for name, extra in {
            "right": {**trusted, **login},
            "wrong": {**trusted, **wrong},
            "untrusted": {**untrusted, **login},
        }.items()
    }
    assert results["right"].ok, results["right"]
    assert results["right"].detail == "connected as auditcorr and disconnected"
    assert not results["wrong"].ok
    assert results["wrong"].detail == "refused by the broker: [code:135] Not authorized"
    assert results["wrong"].hint is not None
    assert "'username' and 'password'" in results["wrong"].hint
    assert not results["untrusted"].ok
    assert "certificate verify failed" in results["untrusted"].detail
    assert (
        results["untrusted"].hint
        == "set 'ca_file' to the CA that signed the receiver's certificate"
    )
