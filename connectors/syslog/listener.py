"""What the syslog network listeners share: the ``listen`` address, per-peer
counters and their metrics, batching into the pipeline, rate-limited logging
and the server TLS context.

Per-peer counters are on ``/metrics`` (``metrics``) and logged every
``stats_interval_secs`` (event ``listener_stats``).
"""

from __future__ import annotations

import abc
import asyncio
import ssl
import time
from pathlib import Path
from typing import ClassVar

import structlog
from pydantic import Field, field_validator

from connectors.base import ConfigError, Emit, Metric, Source, SourceContext
from connectors.config import host_port
from connectors.syslog.batch import Batcher, BatchSettings

log = structlog.get_logger()

MAX_PEERS_COUNTED = 256
"""Peers with counters of their own; the rest are counted under ``other``
(each peer is a handful of series on ``/metrics``)."""
MAX_THROTTLED_KEYS = 4096
"""Throttled log keys remembered before those past their interval are forgotten."""


def parse_listen(value: str, scheme: str) -> tuple[str, int]:
    """``udp:0.0.0.0:514`` -> (host, port); the scheme must be the source's."""
    form = f"'{scheme}:HOST:PORT' (e.g. '{scheme}:0.0.0.0:514')"
    given, sep, rest = value.partition(":")
    if not sep or given != scheme:
        raise ValueError(f"expected {form}")
    host, port = host_port(rest, form)
    return host or "0.0.0.0", port  # noqa: S104 - the operator's choice


class ListenerSettings(BatchSettings):
    scheme: ClassVar[str]
    """The ``listen`` scheme of the source type (``udp``, ``tcp``, ...)."""
    listen: str
    """``SCHEME:HOST:PORT``; port 0 picks a free port (logged as ``listening``)."""
    max_message_bytes: int = Field(default=64 * 1024, ge=480, le=16 * 1024 * 1024)
    """Longer messages are truncated to this and flagged."""
    stats_interval_secs: float = Field(default=60.0, gt=0)
    """How often per-peer counters are logged."""

    @field_validator("listen")
    @classmethod
    def _listen_form(cls, value: str) -> str:
        parse_listen(value, cls.scheme)
        return value


class PeerCounters:
    messages: int = 0
    bytes: int = 0
    truncated: int = 0
    dropped: int = 0
    connections: int = 0
    """Connections accepted (TCP, TLS)."""
    rejected: int = 0
    """Connections closed at once: a connection limit was reached."""
    idle_closed: int = 0
    """Connections closed after ``idle_timeout_secs`` without data."""
    errors: int = 0
    """Connections ended by an error: reset, TLS, not a frame."""
    incomplete_frames: int = 0
    """Octet-counted frames given up after ``frame_timeout_secs``."""


_PEER_METRICS = {
    "messages": ("syslog_messages_total", "Syslog messages received"),
    "bytes": ("syslog_received_bytes_total", "Bytes received by the syslog listener"),
    "truncated": ("syslog_messages_truncated_total", "Messages cut to max_message_bytes"),
    "dropped": ("syslog_messages_dropped_total", "Messages dropped: the pipeline was full"),
    "connections": ("syslog_connections_total", "Connections accepted"),
    "rejected": (
        "syslog_connections_rejected_total",
        "Connections closed at once: max_connections or max_connections_per_peer reached",
    ),
    "idle_closed": ("syslog_connections_idle_closed_total", "Connections closed while idle"),
    "errors": ("syslog_connection_errors_total", "Connections ended by an error"),
    "incomplete_frames": (
        "syslog_frames_incomplete_total",
        "Octet-counted frames whose count the data never reached",
    ),
}
"""Counter attribute -> metric name and help: one series per peer."""


class Listener(Source):
    """A syslog listener: receives into a batcher and counts per peer."""

    config: ListenerSettings
    per_peer: ClassVar[tuple[str, ...]] = ("messages", "bytes", "truncated")
    """The ``PeerCounters`` this transport can count, published per peer."""
    positions: ClassVar[str] = "seq"
    """What tells identical messages apart (see daemon/normalize/syslog.py)."""

    def __init__(self, config: ListenerSettings, context: SourceContext) -> None:
        super().__init__(config, context)
        self.peers: dict[str, PeerCounters] = {}

    def counters(self, peer: str) -> PeerCounters:
        found = self.peers.get(peer)
        if found is None:
            if len(self.peers) >= MAX_PEERS_COUNTED:
                peer = "other"
            found = self.peers.setdefault(peer, PeerCounters())
        return found

    async def run(self, emit: Emit) -> None:
        if self.context.mode == "backfill":
            return  # a listener has nothing to catch up on
        host, port = parse_listen(self.config.listen, self.config.scheme)
        origin = f"{self.config.scheme}://{host}:{port}"
        batcher = Batcher(emit, self.config, origin, self.positions)
        async with asyncio.TaskGroup() as group:
            group.create_task(batcher.run(), name="syslog-batcher")
            group.create_task(self._report(), name="syslog-stats")
            await self._serve(host, port, batcher)

    @abc.abstractmethod
    async def _serve(self, host: str, port: int, batcher: Batcher) -> None:
        """Receive messages into ``batcher`` until cancelled."""

    def _listening(self, address: tuple[str, int]) -> None:
        log.info(
            "listening",
            protocol=self.config.scheme,
            host=address[0],
            port=address[1],
        )

    def stats(self) -> dict[str, object]:
        return {
            "peers": {
                peer: {counted: getattr(counters, counted) for counted in self.per_peer}
                for peer, counters in self.peers.items()
            },
        }

    def metrics(self) -> list[Metric]:
        """The per-peer counters (at most ``MAX_PEERS_COUNTED`` peers, then ``other``)."""
        return [
            Metric(name, getattr(counters, attribute), {"peer": peer}, help_text)
            for attribute in self.per_peer
            for name, help_text in (_PEER_METRICS[attribute],)
            for peer, counters in self.peers.items()
        ]

    async def _report(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.config.stats_interval_secs)
                log.info("listener_stats", **self.stats())
        except asyncio.CancelledError:
            log.info("listener_stats", **self.stats())
            raise


class Throttle:
    """At most one log line per key per interval, for errors a flood repeats."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None to hold the line back; else how many were held back before it."""
        now = time.monotonic()
        if now < self._next.get(key, 0.0):
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._next) >= MAX_THROTTLED_KEYS:  # forget keys whose interval ended
            self._next = {k: t for k, t in self._next.items() if t > now}
            self._held = {k: n for k, n in self._held.items() if k in self._next}
        self._next[key] = now + self.interval
        return self._held.pop(key, 0)


def server_tls(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> ssl.SSLContext:
    """A listener's TLS context; with ``client_ca_file`` clients must show a certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert_file, key_file)
        if client_ca_file is not None:
            context.load_verify_locations(client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (ssl.SSLError, OSError) as err:
        raise ConfigError("cert_file", f"cannot load the TLS certificate or key: {err}") from err
    return context
