"""``syslog_udp``: the syslog listener on UDP (RFC 5426).

It acknowledges nothing upstream, so it never waits for a batch to be
committed; when the pipeline is full it drops what does not fit and counts it.
The kernel's drop count for the socket is on ``/metrics`` and in
``listener_stats``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import ClassVar, Literal, cast

import structlog
from pydantic import Field

from connectors.base import ConfigError, Metric, SourceContext
from connectors.syslog.batch import Batcher
from connectors.syslog.listener import Listener, ListenerSettings

log = structlog.get_logger()


class SyslogUdpConfig(ListenerSettings):
    scheme: ClassVar[str] = "udp"
    type: Literal["syslog_udp"] = "syslog_udp"
    receive_buffer_bytes: int = Field(default=8 * 1024 * 1024, ge=4096)
    """Socket receive buffer (SO_RCVBUF); the kernel caps it at net.core.rmem_max."""
    max_uncommitted_messages: int = Field(default=200_000, gt=0, le=1_000_000)
    """Higher than for TCP: a UDP sender cannot be pushed back and resends nothing,
    so holding more absorbs a burst where a crash would lose it anyway."""


class SyslogUdpSource(Listener):
    """One datagram is one message."""

    config_model = SyslogUdpConfig
    config: SyslogUdpConfig
    per_peer = (*Listener.per_peer, "dropped")

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
        log.warning("udp_error", error=str(exc))
