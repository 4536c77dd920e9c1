"""Output ``syslog``: alerts to a SIEM as RFC 5424 messages over UDP, TCP or TLS.

Each alert is one message (a digest or summary sends its alerts one by one:
a SIEM wants records, not prose).  TCP and TLS use octet-counting framing
(RFC 6587) on one connection, opened on the first send and again after a
failure.  The alert id is the ``id`` structured-data parameter (CEF:
``externalId``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from connectors import reach
from connectors.base import Check, Notification, Output, OutputContext, TransientError
from connectors.config import ExistingFile
from connectors.endpoint import Endpoint, EndpointConfig
from connectors.messages.facts import facts
from connectors.messages.siem import rfc5424

PORTS = {"udp": 514, "tcp": 601, "tls": 6514}
VERSION = "0.1.0"
CLOSE_SECS = 2.0


class SyslogConfig(EndpointConfig):
    ports = PORTS
    type: Literal["syslog"] = "syslog"
    endpoint: str
    """``udp://host:514``, ``tcp://host:601`` or ``tls://host:6514``."""
    format: Literal["rfc5424", "cef"] = "rfc5424"
    """The alert as RFC 5424 structured data, or as an ArcSight CEF message."""
    facility: int = Field(default=13, ge=0, le=23)
    """Syslog facility number; 13 is "log audit"."""
    app_name: str = "auditcorr"
    hostname: str | None = None
    """HOSTNAME field; default: this host's name."""
    ca_file: ExistingFile | None = None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.error: Exception | None = None

    def error_received(self, exc: Exception) -> None:
        self.error = exc


class SyslogOutput(Output):
    config_model = SyslogConfig
    config: SyslogConfig
    _writer: asyncio.StreamWriter | None = None
    _udp: tuple[asyncio.DatagramTransport, _Udp] | None = None

    def __init__(self, config: SyslogConfig, context: OutputContext) -> None:
        super().__init__(config, context)
        self._lock = asyncio.Lock()
        """One sender at a time: framed messages must not interleave on the stream."""

    async def aclose(self) -> None:
        if self._udp is not None:
            self._udp[0].close()
            self._udp = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
            # A peer that already went, or never answers the TLS close, must not stall us.
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(CLOSE_SECS):
                    await writer.wait_closed()

    def _tls(self, target: Endpoint) -> ssl.SSLContext | None:
        return reach.tls_context(self.config.ca_file) if target.scheme == "tls" else None

    async def checks(self) -> list[Check]:
        """TCP and TLS: connect (and handshake), send nothing.  UDP: resolve only."""
        target = self.config.target
        if target.scheme != "udp":
            return await reach.connect(target.host, target.port, self._tls(target))
        resolved = await reach.resolve(target.host, target.port)
        if not resolved.ok:
            return [resolved]
        note = "UDP has no connection to test: the name resolves, delivery is not confirmed"
        return [resolved, Check(f"udp {target.host}:{target.port}", True, note)]

    async def _stream(self, target: Endpoint) -> asyncio.StreamWriter:
        if self._writer is None or self._writer.is_closing():
            context = self._tls(target)
            _, self._writer = await asyncio.open_connection(target.host, target.port, ssl=context)
        return self._writer

    async def _datagram(self, target: Endpoint) -> tuple[asyncio.DatagramTransport, _Udp]:
        if self._udp is None:
            loop = asyncio.get_running_loop()
            self._udp = await loop.create_datagram_endpoint(
                _Udp, remote_addr=(target.host, target.port)
            )
        return self._udp

    def _messages(self, notification: Notification) -> list[bytes]:
        zone = ZoneInfo(self.context.timezone)
        return [
            rfc5424(
                alert,
                facts(alert, zone),
                facility=self.config.facility,
                form=self.config.format,
                app_name=self.config.app_name,
                version=VERSION,
                hostname=self.config.hostname,
            )
            for alert in notification.alerts
        ]

    async def send(self, notification: Notification) -> None:
        target = self.config.target
        messages = self._messages(notification)
        async with self._lock:
            try:
                if target.scheme == "udp":
                    transport, protocol = await self._datagram(target)
                    if protocol.error is not None:
                        raise protocol.error
                    for message in messages:
                        transport.sendto(message)
                else:
                    writer = await self._stream(target)
                    writer.write(b"".join(b"%d %s" % (len(m), m) for m in messages))
                    await writer.drain()
            except OSError as err:
                await self.aclose()
                raise TransientError(f"syslog {target.scheme}: {err}") from err
