"""Syslog listeners: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425).

A TCP or TLS connection is read either as newline-framed lines or as RFC 6587
octet-counted frames (``LEN SP MSG``), decided by its first byte: a digit
means octet counting (rsyslog's ``omfwd`` with ``TCP_Framing="octet-counted"``,
RFC 5425 senders), anything else newline framing (``logger``, syslog-ng's
default).  A message longer than ``max_message_bytes`` is cut there and
flagged (``labels.truncated``); the rest of it is skipped.

The listeners acknowledge nothing upstream, so they never wait for a batch to
be committed; when the pipeline is full they stop reading their sockets (TCP
backpressure) or, for UDP, drop what does not fit and count it.  Per-peer
counters and the kernel's UDP drop count are on ``/metrics`` (``metrics``) and
logged every ``stats_interval_secs`` (event ``listener_stats``).
"""

from __future__ import annotations

import abc
import asyncio
import os
import socket
import ssl
from dataclasses import dataclass
from typing import ClassVar, Literal

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


class SyslogTcpConfig(_ListenerSettings):
    scheme: ClassVar[str] = "tcp"
    type: Literal["syslog_tcp"] = "syslog_tcp"
    max_connections: int = Field(default=1024, gt=0)
    """Further connections are closed at once (and counted)."""


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


_PEER_METRICS = {
    "messages": ("syslog_messages_total", "Syslog messages received"),
    "bytes": ("syslog_received_bytes_total", "Bytes received by the syslog listener"),
    "truncated": ("syslog_messages_truncated_total", "Messages cut to max_message_bytes"),
    "dropped": ("syslog_messages_dropped_total", "Messages dropped: the pipeline was full"),
    "connections": ("syslog_connections_total", "Connections accepted"),
}
"""Counter attribute -> metric name and help: one series per peer."""


class _Listener(Source):
    config: _ListenerSettings
    per_peer: ClassVar[tuple[str, ...]] = ("messages", "bytes", "truncated")
    """The ``PeerCounters`` this transport can count, published per peer."""

    def __init__(self, config: _ListenerSettings, context: SourceContext) -> None:
        super().__init__(config, context)
        self.peers: dict[str, PeerCounters] = {}
        self.rejected_connections = 0

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
        batcher = Batcher(emit, self.config, f"{self.config.scheme}://{host}:{port}")
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
            "rejected_connections": self.rejected_connections,
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
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self, batcher), sock=sock
        )
        self._listening(sock.getsockname()[:2])
        log.info(
            "udp_receive_buffer",
            source=self.context.source_id,
            requested=self.config.receive_buffer_bytes,
            granted=sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        )
        try:
            await asyncio.Event().wait()
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
    def __init__(self, source: SyslogUdpSource, batcher: Batcher) -> None:
        self.source = source
        self.batcher = batcher
        self.limit = source.config.max_message_bytes

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

    def error_received(self, exc: Exception) -> None:
        log.warning("udp_error", source=self.source.context.source_id, error=str(exc))


# --------------------------------------------------------------------------- TCP, TLS


class SyslogTcpSource(_Listener):
    config_model: ClassVar[type[ConnectorConfig]] = SyslogTcpConfig
    config: SyslogTcpConfig
    per_peer = (*_Listener.per_peer, "connections")

    def __init__(self, config: SyslogTcpConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self._open = 0
        self._writers: set[asyncio.StreamWriter] = set()

    def _tls(self) -> ssl.SSLContext | None:
        return None

    def metrics(self) -> list[Metric]:
        return [
            *super().metrics(),
            Metric("syslog_connections_open", self._open, help="Connections open", kind="gauge"),
            Metric(
                "syslog_connections_rejected_total",
                self.rejected_connections,
                help="Connections closed at once: max_connections were open",
            ),
        ]

    async def _serve(self, host: str, port: int, batcher: Batcher) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._connection(reader, writer, batcher)

        try:
            server = await asyncio.start_server(
                handle, host, port, ssl=self._tls(), limit=_READ_BYTES, reuse_address=True
            )
        except OSError as err:
            raise ConfigError("listen", f"cannot listen on {self.config.listen}: {err}") from err
        async with server:
            self._listening(server.sockets[0].getsockname()[:2])
            try:
                await server.serve_forever()
            finally:
                for writer in self._writers:  # readers end, and the server can close
                    writer.close()

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, batcher: Batcher
    ) -> None:
        peer = str((writer.get_extra_info("peername") or ("?",))[0])
        if self._open >= self.config.max_connections:
            self.rejected_connections += 1
            log.warning("connection_rejected", source=self.context.source_id, peer=peer)
            writer.close()
            return
        self._open += 1
        self._writers.add(writer)
        framer = Framer(self.config.max_message_bytes)
        counters = self.counters(peer)
        counters.connections += 1
        try:
            while chunk := await reader.read(_READ_BYTES):
                counters.bytes += len(chunk)
                messages, truncated = framer.feed(chunk)
                counters.messages += len(messages) + len(truncated)
                counters.truncated += len(truncated)
                batcher.extend(messages, peer)
                for message in truncated:
                    batcher.add(message, peer, truncated=True)
                await batcher.room()  # holds this reader while the pipeline is full
            if (rest := framer.rest()) is not None:
                counters.messages += 1
                batcher.add(rest, peer)
        except (ConnectionError, ssl.SSLError, TimeoutError) as err:
            log.info("connection_error", source=self.context.source_id, peer=peer, error=str(err))
        finally:
            self._open -= 1
            self._writers.discard(writer)
            writer.close()


class SyslogTlsSource(SyslogTcpSource):
    config_model = SyslogTlsConfig
    config: SyslogTlsConfig

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.config.cert_file, self.config.key_file)
            if self.config.client_ca_file is not None:
                context.load_verify_locations(self.config.client_ca_file)
                context.verify_mode = ssl.CERT_REQUIRED
        except (ssl.SSLError, OSError) as err:
            raise ConfigError(
                "cert_file", f"cannot load the TLS certificate or key: {err}"
            ) from err
        return context


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
                    raise ConnectionError(f"not an octet-counted frame at {data[pos : pos + 20]!r}")
                break
            digits = data[pos:space]
            if not digits.isdigit():
                raise ConnectionError(f"not an octet-counted frame at {data[pos : pos + 20]!r}")
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
