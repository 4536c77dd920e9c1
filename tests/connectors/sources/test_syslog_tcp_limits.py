"""The listeners against real sockets: frames kept before an error, lying counts,
idle timeouts, per-peer connection caps, log lines that a flood cannot multiply,
and a bound on what is handed on but not committed (what a crash can lose)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from structlog.testing import capture_logs

from connectors.base import RawBatch, SourceContext
from connectors.sources.syslog_tcp import SyslogTcpConfig, SyslogTcpSource
from connectors.sources.syslog_udp import SyslogUdpConfig, SyslogUdpSource
from connectors.syslog.listener import Throttle


class Intake:
    """A running listener on a free port and the messages it emitted; while
    ``holding``, the batches it emits stay uncommitted until ``release``."""

    def __init__(self, source: Any, port: int) -> None:
        self.source = source
        self.port = port
        self.lines: list[bytes] = []
        self.holding = False
        self.held: list[asyncio.Future[None]] = []

    async def emit(self, batch: RawBatch) -> asyncio.Future[None]:
        self.lines += batch.payload.split(b"\n")[1:]
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.holding:
            self.held.append(committed)
        else:
            committed.set_result(None)
        return committed

    def release(self) -> None:
        self.holding = False
        for committed in self.held:
            committed.set_result(None)

    async def until(self, what: str, check: Callable[[], bool], secs: float = 10) -> None:
        async with asyncio.timeout(secs):
            while not check():  # noqa: ASYNC110 - the source's counters are plain ints
                await asyncio.sleep(0.02)
        assert check(), what

    async def connect(self, host: str = "127.0.0.1") -> tuple[Any, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, local_addr=(host, 0))
        return reader, writer


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@asynccontextmanager
async def intake(**settings: Any) -> AsyncIterator[Intake]:
    """A ``syslog_tcp`` source, accepting connections once this yields."""
    port = _free_port()
    config = SyslogTcpConfig(listen=f"tcp:127.0.0.1:{port}", batch_max_ms=10, **settings)
    running = Intake(SyslogTcpSource(config, SourceContext("tcp_in", {})), port)
    task = asyncio.create_task(running.source.run(running.emit))
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        break
    try:
        yield running
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def udp_intake(**settings: Any) -> AsyncIterator[Intake]:
    """A ``syslog_udp`` source, bound once this yields."""
    port = _free_port(socket.SOCK_DGRAM)
    config = SyslogUdpConfig(listen=f"udp:127.0.0.1:{port}", batch_max_ms=10, **settings)
    running = Intake(SyslogUdpSource(config, SourceContext("udp_in", {})), port)
    task = asyncio.create_task(running.source.run(running.emit))
    await running.until("the socket bound", lambda: running.source.kernel_drops() is not None)
    try:
        yield running
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_bad_frame_keeps_the_thousand_frames_before_it() -> None:
    """1,000 valid octet-counted frames and a bad one in the same write: all 1,000 stored."""
    frames = [b"<13>Mar  7 10:00:00 host app: message %d" % n for n in range(1000)]
    stream = b"".join(b"%d %s" % (len(m), m) for m in frames) + b"this is no frame"
    async with intake() as running:
        reader, writer = await running.connect()
        writer.write(stream)
        await writer.drain()
        assert await reader.read() == b""  # the listener closed the broken stream
        await running.until("1000 messages", lambda: len(running.lines) >= 1000)
        assert running.lines == frames
        assert running.source.counters("127.0.0.1").errors == 1


async def test_a_lying_count_ends_after_the_frame_timeout() -> None:
    """A count larger than the data is given up after frame_timeout_secs: counted, its
    bytes kept, the frame after it recovered and the connection still reads."""
    async with intake(frame_timeout_secs=0.3) as running:
        _, writer = await running.connect()
        writer.write(b"500 <13>short lie\n21 <13>host app: valid 1")
        await writer.drain()
        await running.until("two messages", lambda: len(running.lines) >= 2)
        writer.write(b"21 <13>host app: valid 2")
        await writer.drain()
        await running.until("three messages", lambda: len(running.lines) >= 3)
        assert running.lines == [
            b"<13>host app: valid 1",
            b"<13>short lie",
            b"<13>host app: valid 2",
        ]
        counters = running.source.counters("127.0.0.1")
        assert (counters.incomplete_frames, counters.truncated) == (1, 1)
        writer.close()


async def test_an_idle_connection_is_closed_and_counted() -> None:
    """A connection that sends nothing for idle_timeout_secs is closed by the listener."""
    async with intake(idle_timeout_secs=0.3) as running:
        reader, writer = await running.connect()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        assert running.source.counters("127.0.0.1").idle_closed == 1
        writer.close()


async def test_one_peer_flooding_idle_connections_leaves_others_working() -> None:
    """Past max_connections_per_peer one address is refused; another address still sends."""
    async with intake(max_connections_per_peer=20, max_connections=40) as running:
        flood = [await running.connect("127.0.0.1") for _ in range(60)]
        await running.until(
            "40 refused", lambda: running.source.counters("127.0.0.1").rejected >= 40
        )
        _, writer = await running.connect("127.0.0.2")
        writer.write(b"<13>host app: still heard\n")
        await writer.drain()
        await running.until("the other sender", lambda: bool(running.lines))
        assert running.lines == [b"<13>host app: still heard"]
        assert running.source.counters("127.0.0.1").rejected == 40
        [open_now] = [m for m in running.source.metrics() if m.name == "syslog_connections_open"]
        assert open_now.value == 21  # 20 of the flood, 1 of the other sender
        writer.close()
        for _, idle in flood:
            idle.close()


async def test_a_reset_flood_logs_one_line_per_peer() -> None:
    """200 connect-and-reset cycles are counted one by one and logged once per kind, not
    200 times (resets faster than the listener handles them meet the per-peer cap)."""
    async with intake() as running:
        counters = running.source.counters("127.0.0.1")
        with capture_logs() as logs:
            await asyncio.to_thread(_resets, running.port, 200)
            await running.until(
                "200 connections handled", lambda: counters.errors + counters.rejected >= 200
            )
        assert counters.connections == counters.errors + 1  # + the fixture's readiness probe
        for event in ("connection_error", "connection_rejected"):
            assert len([e for e in logs if e["event"] == event]) <= 1
        assert [e["event"] for e in logs].count("connection_error") == 1


def _resets(port: int, count: int) -> None:
    """Connect, send half a frame and reset (SO_LINGER 0), ``count`` times."""
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"50 <13>x")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_the_throttle_counts_what_it_held_back() -> None:
    """Held-back lines are reported as the count on the next line let through."""
    throttle = Throttle(0.05)
    assert throttle.allow("a") == 0
    assert [throttle.allow("a") for _ in range(3)] == [None, None, None]
    assert throttle.allow("b") == 0


def _send_lines(port: int, count: int) -> None:
    """``count`` newline-framed lines on one connection, as fast as it takes them."""
    lines = b"".join(b"<13>Nov 27 12:00:00 h app: line %d\n" % n for n in range(count))
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(lines)


async def test_tcp_senders_wait_while_the_store_has_not_committed() -> None:
    """While nothing commits, at most max_uncommitted_messages are handed on and the
    sender is pushed back; once commits come, every line arrives."""
    settings = {"max_uncommitted_messages": 1000, "batch_max_messages": 100}
    async with intake(**settings) as running:
        running.holding = True
        sending = asyncio.create_task(asyncio.to_thread(_send_lines, running.port, 200_000))
        await running.until("batches handed on", lambda: len(running.held) >= 5)
        await asyncio.sleep(1)
        assert len(running.lines) <= 1000
        assert not sending.done()  # pushed back: the kernel's buffers are full
        running.release()
        await sending
        await running.until("every line", lambda: len(running.lines) >= 200_000, secs=60)
        assert len(running.lines) == 200_000


async def test_udp_waits_in_the_kernel_buffer_not_dropped_while_uncommitted() -> None:
    """A burst while nothing commits is held in the socket buffer, not dropped in the
    daemon; it all arrives once commits resume."""
    settings = {"max_uncommitted_messages": 500, "batch_max_messages": 100}
    async with udp_intake(**settings) as running:
        running.holding = True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for n in range(3000):
                sender.sendto(
                    b"<13>Nov 27 12:00:00 h app: datagram %d" % n, ("127.0.0.1", running.port)
                )
        await running.until("batches handed on", lambda: len(running.held) >= 4)
        await asyncio.sleep(0.5)
        assert len(running.lines) <= 500
        running.release()
        await running.until("every datagram", lambda: len(running.lines) >= 3000)
        counters = running.source.counters("127.0.0.1")
        assert (len(running.lines), counters.dropped, running.source.kernel_drops()) == (3000, 0, 0)
