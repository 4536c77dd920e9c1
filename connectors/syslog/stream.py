"""The stream listener under ``syslog_tcp``, ``syslog_tls`` and ``syslog_relp``.

Each connection is framed by :class:`connectors.syslog.framing.Framer`.  Every
whole frame before a broken one is kept; a frame whose count the data never
reaches is given up after ``frame_timeout_secs`` (kept, flagged truncated,
counted).

Connections are bounded in number, per peer and in idle time; refusals,
errors and lying counts are counted one by one but logged at most once a
minute per peer, so a flood of them cannot flood the log too.  When the
pipeline is full the listener stops reading its sockets (TCP backpressure).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import cast

import structlog
from pydantic import Field

from connectors.base import ConfigError, Metric, SourceContext
from connectors.syslog.batch import Batcher
from connectors.syslog.framing import Framer, FramingError
from connectors.syslog.listener import Listener, ListenerSettings, PeerCounters, Throttle

log = structlog.get_logger()

_BACKLOG = 1024
"""Connections the kernel completes before the daemon accepts them: a burst of
short connections waits there instead of being refused."""


class StreamSettings(ListenerSettings):
    """Settings of every stream listener."""

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


class StreamListener(Listener):
    """Accepts connections and frames what they send into the batcher."""

    config: StreamSettings
    per_peer = (
        *Listener.per_peer,
        "connections",
        "rejected",
        "idle_closed",
        "errors",
        "incomplete_frames",
    )

    def __init__(self, config: StreamSettings, context: SourceContext) -> None:
        super().__init__(config, context)
        self._open: set[StreamConnection] = set()
        self._open_by_peer: dict[str, int] = {}
        self._paused: set[StreamConnection] = set()
        self._pause = asyncio.Event()
        self._throttle = Throttle(60.0)

    @property
    def connection(self) -> type[StreamConnection]:
        """The protocol that reads one connection (RELP brings its own)."""
        return StreamConnection

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

    def opened(self, connection: StreamConnection) -> None:
        self._open.add(connection)
        peer = connection.peer
        self._open_by_peer[peer] = self._open_by_peer.get(peer, 0) + 1

    def closed(self, connection: StreamConnection) -> None:
        self._open.discard(connection)
        self._paused.discard(connection)
        peer = connection.peer
        if (left := self._open_by_peer.pop(peer, 0) - 1) > 0:
            self._open_by_peer[peer] = left

    def paused_reading(self, connection: StreamConnection) -> None:
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
            log.warning(event, peer=peer, suppressed=suppressed, **fields)


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection: frames what arrives into the batcher.

    A protocol rather than a stream reader and a task: a connection then costs
    no task and no extra copy, which is what makes accepting and closing
    thousands of short connections a second possible.
    """

    def __init__(self, source: StreamListener, batcher: Batcher) -> None:
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
