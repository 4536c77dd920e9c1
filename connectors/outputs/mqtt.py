"""Output ``mqtt``: each alert published as its JSON document (MQTT 5, aiomqtt).

The alert id travels as the ``idempotency-key`` user property.  The client
connects on the first send and after a failure; the daemon's backoff spaces
the reconnects, so a broker that is down delays alerts but loses none.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from contextlib import AsyncExitStack
from typing import Literal

import aiomqtt
import orjson
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from connectors import reach
from connectors.base import (
    AuthError,
    Check,
    Notification,
    Output,
    OutputContext,
    TransientError,
)
from connectors.config import ExistingFile
from connectors.endpoint import LoginConfig
from connectors.messages.document import document
from connectors.messages.facts import worst_severity

PORTS = {"mqtt": 1883, "mqtts": 8883}

REFUSED = frozenset({4, 5, 134, 135, 138, 140})
"""CONNACK codes that refuse the client itself, not the moment, so retrying soon is futile:
MQTT 3.1.1's bad user name or password (4) and not authorised (5); MQTT 5's bad user name
or password (134), not authorised (135), banned (138)
and bad authentication method (140)."""


class MqttConfig(LoginConfig):
    ports = PORTS
    type: Literal["mqtt"] = "mqtt"
    endpoint: str
    """``mqtt://host:1883`` or ``mqtts://host:8883`` (TLS)."""
    topic: str = "auditcorr/alerts/{severity}/{rule}"
    """Template with ``{severity}`` and ``{rule}`` (``digest``/``summary`` for groups)."""
    latest_topic: str | None = None
    """Also publish each alert retained here (template as ``topic``): the latest per rule."""
    qos: Literal[0, 1, 2] = 1
    client_id: str | None = None
    ca_file: ExistingFile | None = None


def topic_of(template: str, notification: Notification) -> str:
    rule = (
        notification.alerts[0]["rule"]["id"] if notification.kind == "alert" else notification.kind
    )
    return template.format(severity=worst_severity(notification), rule=rule)


class MqttOutput(Output):
    config_model = MqttConfig
    config: MqttConfig

    def __init__(self, config: MqttConfig, context: OutputContext) -> None:
        super().__init__(config, context)
        self._client: aiomqtt.Client | None = None
        self._stack = AsyncExitStack()
        self._connecting = asyncio.Lock()

    def _new_client(self) -> aiomqtt.Client:
        target = self.config.target
        tls = reach.tls_context(self.config.ca_file) if target.scheme == "mqtts" else None
        return aiomqtt.Client(
            target.host,
            target.port,
            username=self.config.username,
            password=self.config.password.reveal() if self.config.password else None,
            identifier=self.config.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            tls_context=tls,
            timeout=self.config.timeout_secs,
        )

    async def _connect(self) -> aiomqtt.Client:
        async with self._connecting:
            if self._client is None:
                self._client = await self._stack.enter_async_context(self._new_client())
            return self._client

    async def checks(self) -> list[Check]:
        """Connect to the broker with the configured login and TLS, then disconnect."""
        target = self.config.target
        resolved = await reach.resolve(target.host, target.port)
        if not resolved.ok:
            return [resolved]
        name = f"MQTT connect to {target.host}:{target.port}"
        login = f" as {self.config.username}" if self.config.username else ""
        try:
            async with self._new_client():
                pass
        except aiomqtt.MqttCodeError as err:
            hint = "check 'username' and 'password', and the broker's ACL for this client"
            return [resolved, Check(name, False, f"refused by the broker: {err}", hint)]
        except aiomqtt.MqttError as err:
            cause = err.__cause__ or err.__context__
            if isinstance(cause, ssl.SSLError):
                return [resolved, Check(name, False, str(cause), reach.tls_hint(cause))]
            failed = reach.unreachable(f"{target.host}:{target.port}", cause or err)
            return [resolved, Check(name, False, str(err), failed.hint)]
        return [resolved, Check(name, True, f"connected{login} and disconnected")]

    async def aclose(self) -> None:
        self._client = None
        stack, self._stack = self._stack, AsyncExitStack()
        # A connection already gone has nothing left to close.
        with contextlib.suppress(aiomqtt.MqttError):
            await stack.aclose()

    async def send(self, notification: Notification) -> None:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = [("idempotency-key", notification.key)]
        properties.ContentType = "application/json"
        payload = orjson.dumps(document(notification))
        try:
            client = await self._connect()
            await client.publish(
                topic_of(self.config.topic, notification),
                payload,
                qos=self.config.qos,
                properties=properties,
            )
            if self.config.latest_topic:
                await client.publish(
                    topic_of(self.config.latest_topic, notification),
                    payload,
                    qos=self.config.qos,
                    retain=True,
                    properties=properties,
                )
        except aiomqtt.MqttError as err:
            await self.aclose()
            if isinstance(err, MqttConnectError) and _code(err) in REFUSED:
                raise AuthError(f"MQTT broker refused this client: {err}") from err
            raise TransientError(f"MQTT: {err}") from err


def _code(err: MqttConnectError) -> int | None:
    """The CONNACK code as a number (paho gives a ReasonCode for MQTT 5, an int before).

    Only a refused connect is asked: other errors carry paho's own client codes, where 4
    means "not connected", not a refused login.
    """
    return err.rc if isinstance(err.rc, int) or err.rc is None else err.rc.value
