"""Syslog listeners: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425).

A TCP or TLS connection is read either as newline-framed lines or as RFC 6587
octet-counted frames (``LEN SP MSG``), decided by its first byte: a digit
means octet counting (rsyslog's ``omfwd`` with ``TCP_Framing="octet-counted"``,
RFC 5425 senders), anything else newline framing (``logger``, syslog-ng's
default).  A message longer than ``max_message_bytes`` is cut there and
flagged (``labels.truncated``); the rest of it is skipped.  Every whole frame
before a broken one is kept; a frame whose count the data never reaches is
given up after ``frame_timeout_secs`` (kept, flagged truncated, counted).

Connections are bounded in number, per peer and in idle time; refusals,
errors and lying counts are counted one by one but logged at most once a
minute per peer, so a flood of them cannot flood the log too.

These listeners acknowledge nothing upstream (RELP, connectors/syslog_relp.py,
does), so they never wait for a batch to be committed; when the pipeline is
full they stop reading their sockets (TCP backpressure) or, for UDP, drop
what does not fit and count it.  Per-peer counters and the kernel's UDP drop
count are on ``/metrics`` (``metrics``) and logged every
``stats_interval_secs`` (event ``listener_stats``).
"""

from __future__ import annotations

import abc
import asyncio
import os
import re
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, cast

import structlog
from pydantic import Field, field_validator

from connectors.base import ConfigError, Emit, Metric, Source, SourceContext
from connectors.config import ConfigPath, ConnectorConfig, host_port
from connectors.syslog_batch import ESCAPED_NEWLINE, Batcher, BatchSettings

log = structlog.get_logger()

MAX_PEERS_COUNTED = 256
"""Peers with counters of their own; the rest are counted under ``other``
(each peer is a handful of series on ``/metrics``)."""
_READ_BYTES = 256 * 1024
_FRAME_START = re.compile(rb"(?<![0-9])[1-9][0-9]{0,8} <")
"""Where an octet-counted frame can begin: its count, a space and the PRI."""
_BACKLOG = 1024
"""Connections the kernel completes before the daemon accepts them: a burst of
short connections waits there instead of being refused."""
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


class _ListenerSettings(BatchSettings):
    scheme: ClassVar[str] = "udp"
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


class SyslogUdpConfig(_ListenerSettings):
    type: Literal["syslog_udp"] = "syslog_udp"
    receive_buffer_bytes: int = Field(default=8 * 1024 * 1024, ge=4096)
    """Socket receive buffer (SO_RCVBUF); the kernel caps it at net.core.rmem_max."""
    max_uncommitted_messages: int = Field(default=200_000, gt=0, le=1_000_000)
    """Higher than for TCP: a UDP sender cannot be pushed back and resends nothing,
    so holding more absorbs a burst where a crash would lose it anyway."""


class SyslogTcpConfig(_ListenerSettings):
    scheme: ClassVar[str] = "tcp"
    type: Literal["syslog_tcp"] = "syslog_tcp"
    max_connections: int = Field(default=1024, gt=0)
    """Further connections are closed at once (and counted)."""
    max_connections_per_peer: int = Field(default=64, gt=0)
    """Connections one address may hold open; further ones are closed at once, so
    one sender cannot take every slot."""
    idle_timeout_secs: float = Field(default=600.0, gt=0)
    """A connection that sends nothing for this long is closed."""
    frame_timeout_secs: float = Field(default=10.0, gt=0)
    """An octet-counted frame whose count is not reached after this long without
    data is given up: what came is kept, flagged truncated."""


class SyslogTlsConfig(SyslogTcpConfig):
    scheme: ClassVar[str] = "tls"
    type: Literal["syslog_tls"] = "syslog_tls"  # type: ignore[assignment]
    cert_file: ConfigPath
    """Server certificate chain (PEM); read when the listener starts."""
    key_file: ConfigPath
    """Private key of ``cert_file`` (PEM)."""
    client_ca_file: ConfigPath | None = None
    """When set, clients must present a certificate signed by this CA."""


@dataclass(slots=True)
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


class _Listener(Source):
    config: _ListenerSettings
    per_peer: ClassVar[tuple[str, ...]] = ("messages", "bytes", "truncated")
    """The ``PeerCounters`` this transport can count, published per peer."""
    positions: ClassVar[str] = "seq"
    """What tells identical messages apart (see daemon/normalize/syslog.py)."""

    def __init__(self, config: _ListenerSettings, context: SourceContext) -> None:
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
            source=self.context.source_id,
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
                log.info("listener_stats", source=self.context.source_id, **self.stats())
        except asyncio.CancelledError:
            log.info("listener_stats", source=self.context.source_id, **self.stats())
            raise


# --------------------------------------------------------------------------- UDP


class SyslogUdpSource(_Listener):
    """One datagram is one message."""

    config_model = SyslogUdpConfig
    config: SyslogUdpConfig
    per_peer = (*_Listener.per_peer, "dropped")

    def __init__(self, config: SyslogUdpConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self._inode = 0
        self._drops: int | None = None

    async def _serve(self, host: str, port: int, batcher: Batcher) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.receive_buffer_bytes)
            sock.bind((host, port))
        except OSError as err:
            sock.close()
            raise ConfigError("listen", f"cannot listen on {self.config.listen}: {err}") from err
        sock.setblocking(False)
        self._inode = os.fstat(sock.fileno()).st_ino
        loop = asyncio.get_running_loop()
        protocol = _UdpProtocol(self, batcher)
        transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
        self._listening(sock.getsockname()[:2])
        log.info(
            "udp_receive_buffer",
            source=self.context.source_id,
            requested=self.config.receive_buffer_bytes,
            granted=sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        )
        try:
            while True:  # reading paused on a full pipeline resumes once a batch left
                await protocol.paused.wait()
                await batcher.room()
                protocol.resume()
        finally:
            self.kernel_drops()  # the last count, read while the socket is still open
            transport.close()

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped on this socket (its receive buffer was full);
        the last count read once the socket is closed, None where /proc does not say."""
        if not self._inode:  # not bound yet
            return self._drops
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                with open(table) as rows:
                    next(rows)
                    for row in rows:
                        columns = row.split()
                        if int(columns[9]) == self._inode:
                            self._drops = int(columns[-1])
                            return self._drops
            except (OSError, ValueError, IndexError, StopIteration):
                continue
        return self._drops

    def stats(self) -> dict[str, object]:
        return {**super().stats(), "kernel_drops": self.kernel_drops()}

    def metrics(self) -> list[Metric]:
        drops = self.kernel_drops()
        if drops is None:
            return super().metrics()
        return [
            *super().metrics(),
            Metric(
                "syslog_udp_kernel_drops_total",
                drops,
                help="Datagrams the kernel dropped: the socket's receive buffer was full",
            ),
        ]


class _UdpProtocol(asyncio.DatagramProtocol):
    """Datagrams into the batcher.  While a full batch waits for the pipeline the
    socket is not read: datagrams then wait in the kernel's receive buffer (the
    kernel counts what overflows it) instead of being dropped here."""

    def __init__(self, source: SyslogUdpSource, batcher: Batcher) -> None:
        self.source = source
        self.batcher = batcher
        self.limit = source.config.max_message_bytes
        self.transport: asyncio.ReadTransport | None = None
        self.paused = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's datagram transports can pause reading; typeshed does not say so
        self.transport = cast("asyncio.ReadTransport", transport)

    def resume(self) -> None:
        self.paused.clear()
        if self.transport is not None:
            self.transport.resume_reading()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        peer = str(addr[0])
        counters = self.source.counters(peer)
        if self.batcher.full:
            counters.dropped += 1
            return
        counters.messages += 1
        counters.bytes += len(data)
        data = data.rstrip(b"\r\n\0")
        if len(data) > self.limit:
            counters.truncated += 1
            self.batcher.add(data[: self.limit], peer, truncated=True)
        else:
            self.batcher.add(data, peer)
        if self.batcher.blocked and self.transport is not None and not self.paused.is_set():
            self.transport.pause_reading()
            self.paused.set()

    def error_received(self, exc: Exception) -> None:
        log.warning("udp_error", source=self.source.context.source_id, error=str(exc))


# --------------------------------------------------------------------------- TCP, TLS


class SyslogTcpSource(_Listener):
    config_model: ClassVar[type[ConnectorConfig]] = SyslogTcpConfig
    config: SyslogTcpConfig
    per_peer = (
        *_Listener.per_peer,
        "connections",
        "rejected",
        "idle_closed",
        "errors",
        "incomplete_frames",
    )

    def __init__(self, config: SyslogTcpConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self._open: set[_TcpConnection] = set()
        self._open_by_peer: dict[str, int] = {}
        self._paused: set[_TcpConnection] = set()
        self._pause = asyncio.Event()
        self._throttle = Throttle(60.0)

    @property
    def connection(self) -> type[_TcpConnection]:
        """The protocol that reads one connection (RELP brings its own)."""
        return _TcpConnection

    def _tls(self) -> ssl.SSLContext | None:
        return None

    def metrics(self) -> list[Metric]:
        return [
            *super().metrics(),
            Metric(
                "syslog_connections_open", len(self._open), help="Connections open", kind="gauge"
            ),
        ]

    async def _serve(self, host: str, port: int, batcher: Batcher) -> None:
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                lambda: self.connection(self, batcher),
                host,
                port,
                ssl=self._tls(),
                reuse_address=True,
                backlog=_BACKLOG,
            )
        except OSError as err:
            raise ConfigError("listen", f"cannot listen on {self.config.listen}: {err}") from err
        async with server, asyncio.TaskGroup() as group:
            self._listening(server.sockets[0].getsockname()[:2])
            group.create_task(self._expire(), name="syslog-timeouts")
            group.create_task(self._resume(batcher), name="syslog-backpressure")
            try:
                await server.serve_forever()
            finally:
                for connection in list(self._open):  # what they hold goes into the last batch
                    connection.finish()

    def admit(self, peer: str) -> str | None:
        """Why a new connection from ``peer`` is refused, or None to take it."""
        if len(self._open) >= self.config.max_connections:
            return "max_connections"
        if self._open_by_peer.get(peer, 0) >= self.config.max_connections_per_peer:
            return "max_connections_per_peer"
        return None

    def opened(self, connection: _TcpConnection) -> None:
        self._open.add(connection)
        peer = connection.peer
        self._open_by_peer[peer] = self._open_by_peer.get(peer, 0) + 1

    def closed(self, connection: _TcpConnection) -> None:
        self._open.discard(connection)
        self._paused.discard(connection)
        peer = connection.peer
        if (left := self._open_by_peer.pop(peer, 0) - 1) > 0:
            self._open_by_peer[peer] = left

    def paused_reading(self, connection: _TcpConnection) -> None:
        self._paused.add(connection)
        self._pause.set()

    async def _resume(self, batcher: Batcher) -> None:
        """Resume the connections paused on a full pipeline once a batch left."""
        while True:
            await self._pause.wait()
            await batcher.room()
            self._pause.clear()
            paused, self._paused = self._paused, set()
            for connection in paused:
                connection.resume()

    async def _expire(self) -> None:
        """Close idle connections and give up lying frames, checked a few times per
        timeout rather than by a timer per connection and read."""
        idle, frame = self.config.idle_timeout_secs, self.config.frame_timeout_secs
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, idle / 4, frame / 4))
            now = loop.time()
            for connection in list(self._open):
                connection.check(now, idle, frame)

    def note(self, event: str, peer: str, **fields: object) -> None:
        """Log ``event`` for ``peer`` at most once a minute; the count of lines
        held back since the last one rides along as ``suppressed``."""
        suppressed = self._throttle.allow(f"{event}:{peer}")
        if suppressed is not None:
            log.warning(
                event, source=self.context.source_id, peer=peer, suppressed=suppressed, **fields
            )


class _TcpConnection(asyncio.Protocol):
    """One TCP or TLS connection: frames what arrives into the batcher.

    A protocol rather than a stream reader and a task: a connection then costs
    no task and no extra copy, which is what makes accepting and closing
    thousands of short connections a second possible.
    """

    def __init__(self, source: SyslogTcpSource, batcher: Batcher) -> None:
        self.source = source
        self.batcher = batcher
        self.peer = "?"
        self.counters = PeerCounters()
        self.framer = Framer(source.config.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.last = 0.0
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast("asyncio.Transport", transport)  # a stream server's
        self.peer = str((transport.get_extra_info("peername") or ("?",))[0])
        self.counters = counters = self.source.counters(self.peer)
        if (limit := self.source.admit(self.peer)) is not None:
            counters.rejected += 1
            self.source.note("connection_rejected", self.peer, reason=limit)
            transport.abort()
            return
        self.transport = transport
        self.last = asyncio.get_running_loop().time()
        counters.connections += 1
        self.source.opened(self)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return  # refused, being aborted
        self.last = asyncio.get_running_loop().time()
        self.counters.bytes += len(data)
        try:
            self._keep(*self.framer.feed(data))
        except FramingError as err:
            self._keep(err.messages, err.truncated)
            self._fail(str(err))
            return
        self.hold_back()

    def hold_back(self) -> None:
        """Stop reading while a full batch waits for the pipeline (TCP backpressure)."""
        if self.transport is not None and self.batcher.blocked and not self.paused:
            self.paused = True
            self.transport.pause_reading()
            self.source.paused_reading(self)

    def eof_received(self) -> bool:
        self.finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return
        if exc is not None:
            self._fail(str(exc) or type(exc).__name__)
        self.finish()

    def resume(self) -> None:
        if self.transport is not None and self.paused:
            self.paused = False
            self.last = asyncio.get_running_loop().time()
            self.transport.resume_reading()

    def check(self, now: float, idle: float, frame: float) -> None:
        """Apply the idle and frame timeouts (a paused connection is not idle)."""
        if self.transport is None or self.paused:
            return
        if self.framer.waiting:
            if now - self.last >= frame:
                self.counters.incomplete_frames += 1
                self.source.note("frame_incomplete", self.peer, timeout_secs=frame)
                self._keep(*self.framer.expire())
                self.last = now
        elif now - self.last >= idle:
            self.counters.idle_closed += 1
            self.finish()

    def finish(self) -> None:
        """Keep the unterminated last line, close, and stop counting as open."""
        transport, self.transport = self.transport, None
        if transport is None:
            return
        if (rest := self.framer.rest()) is not None:
            self.counters.messages += 1
            self.batcher.add(rest, self.peer)
        self.source.closed(self)
        transport.close()

    def _fail(self, error: str) -> None:
        self.counters.errors += 1
        self.source.note("connection_error", self.peer, error=error)
        transport, self.transport = self.transport, None
        if transport is not None:
            self.source.closed(self)
            transport.abort()

    def _keep(self, messages: list[bytes], truncated: list[bytes]) -> None:
        counters = self.counters
        counters.messages += len(messages) + len(truncated)
        counters.truncated += len(truncated)
        self.batcher.extend(messages, self.peer)
        for message in truncated:
            self.batcher.add(message, self.peer, truncated=True)


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


class SyslogTlsSource(SyslogTcpSource):
    config_model = SyslogTlsConfig
    config: SyslogTlsConfig

    def _tls(self) -> ssl.SSLContext:
        return server_tls(self.config.cert_file, self.config.key_file, self.config.client_ca_file)


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


class FramingError(ConnectionError):
    """An octet-counted stream holds something that is not a frame; the stream is
    lost from there on, but the frames before it in the same read are in
    ``messages`` and ``truncated`` so that they are kept."""

    def __init__(self, reason: str, messages: list[bytes], truncated: list[bytes]) -> None:
        super().__init__(reason)
        self.messages = messages
        self.truncated = truncated


class Framer:
    """Splits a TCP stream into messages: newline framing or octet counting,
    decided by the stream's first byte."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.octets: bool | None = None
        self._buffer = b""
        self._skip = 0
        """Bytes of an over-long message still to throw away (octet counting),
        or -1: up to the next newline (newline framing)."""

    @property
    def waiting(self) -> bool:
        """An octet-counted frame has begun and its count is not reached yet."""
        return bool(self.octets) and (self._skip > 0 or bool(self._buffer.strip()))

    def feed(self, chunk: bytes) -> tuple[list[bytes], list[bytes]]:
        """Complete messages, and truncated ones, found so far."""
        data = self._buffer + chunk if self._buffer else chunk
        if self.octets is None:
            data = data.lstrip()
            if not data:
                return [], []
            self.octets = data[:1].isdigit()
        if self.octets:
            return self._octet_frames(data)
        return self._lines(data)

    def rest(self) -> bytes | None:
        """The unterminated last line of a newline-framed stream that ended."""
        rest = self._buffer.strip()
        self._buffer = b""
        return rest if rest and not self.octets and self._skip == 0 else None

    def expire(self) -> tuple[list[bytes], list[bytes]]:
        """Give up on the frame that is ``waiting``: its count was a lie.

        Its bytes are kept as one truncated message; when a frame header
        (``LEN SP <``) inside them starts a run of whole frames up to the end of
        what arrived, the message ends there and those frames are kept as they
        came (a sender that lied about one count is usually right about the next).
        """
        data = self._buffer.lstrip(b"\r\n ")
        self._buffer, self._skip = b"", 0
        digits, space, body = data.partition(b" ")
        if not (space and digits.isdigit()):
            body = data
        if not body:
            return [], []
        for start in _FRAME_START.finditer(body, 1):
            probe = Framer(self.limit)
            probe.octets = True
            try:
                messages, truncated = probe._octet_frames(body[start.start() :])
            except FramingError:
                continue
            if not probe.waiting:
                kept = body[: min(start.start(), self.limit)].rstrip(b"\r\n")
                return messages, [kept, *truncated]
        return [], [body[: self.limit].rstrip(b"\r\n")]

    def _lines(self, data: bytes) -> tuple[list[bytes], list[bytes]]:
        truncated: list[bytes] = []
        if self._skip:
            end = data.find(b"\n")
            if end < 0:
                self._buffer = b""
                return [], []
            data = data[end + 1 :]
            self._skip = 0
        last = data.rfind(b"\n")
        if last < 0:
            lines: list[bytes] = []
            self._buffer = data
        else:
            lines = data[:last].split(b"\n")
            self._buffer = data[last + 1 :]
        if len(self._buffer) > self.limit:
            truncated.append(self._buffer[: self.limit])
            self._buffer = b""
            self._skip = -1
        limit = self.limit
        keep: list[bytes] = []
        for line in lines:
            message = line[:-1] if line.endswith(b"\r") else line
            if not message:
                continue
            if len(message) > limit:
                truncated.append(message[:limit])
            else:
                keep.append(message)
        return keep, truncated

    def _octet_frames(self, data: bytes) -> tuple[list[bytes], list[bytes]]:
        messages: list[bytes] = []
        truncated: list[bytes] = []
        pos = 0
        size = len(data)
        if self._skip:
            taken = min(self._skip, size)
            self._skip -= taken
            pos = taken
        limit = self.limit
        while pos < size:
            while pos < size and data[pos] in b"\r\n ":
                pos += 1
            space = data.find(b" ", pos, pos + 12)
            if space < 0:
                if size - pos >= 12 or not data[pos:size].isdigit():
                    raise self._broken(data, pos, messages, truncated)
                break
            digits = data[pos:space]
            if not digits.isdigit():
                raise self._broken(data, pos, messages, truncated)
            length = int(digits)
            start = space + 1
            if length > limit:
                available = size - start
                if available < limit:
                    break  # wait until the part that is kept has arrived
                truncated.append(data[start : start + limit])
                skipped = min(length - limit, available - limit)
                self._skip = length - limit - skipped
                pos = start + limit + skipped
                continue
            end = start + length
            if end > size:
                break
            message = data[start:end].rstrip(b"\n")
            if b"\n" in message:
                message = message.replace(b"\n", ESCAPED_NEWLINE)
            messages.append(message)
            pos = end
        self._buffer = data[pos:]
        return messages, truncated

    def _broken(
        self, data: bytes, pos: int, messages: list[bytes], truncated: list[bytes]
    ) -> FramingError:
        self._buffer = b""
        return FramingError(
            f"not an octet-counted frame at {data[pos : pos + 20]!r}", messages, truncated
        )
