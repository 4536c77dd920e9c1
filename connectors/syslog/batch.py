"""Gathering syslog messages into payloads, and the settings every syslog source shares.

Per-batch costs (a queue slot, a pickle, a worker round trip, a commit) are
far larger than per-message ones, so listeners and tailers hand the pipeline
a few thousand messages at a time, or whatever arrived within a few
milliseconds.  The payload format is the ``syslog`` log type's (header line,
then one message per line; see daemon/normalize/syslog.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import Field, field_validator

from connectors.base import Emit, RawBatch
from connectors.config import SourceConfig

ESCAPED_NEWLINE = b"#012"
"""What a newline inside one message becomes (rsyslog's control-character escape)."""

Acknowledge = Callable[[BaseException | None], None]
"""Called once the batch holding a message is settled: None when it was committed,
else what failed."""


def check_timezone(value: str) -> str:
    if value.upper() != "UTC":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name like Europe/Berlin)"
            ) from None
    return value


class SyslogSettings(SourceConfig):
    """Settings of every source of syslog lines."""

    timezone: str = "UTC"
    """Zone of time stamps that carry none (RFC 3164, most log files)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)


class BatchSettings(SyslogSettings):
    """Settings of sources that gather messages into payloads (the listeners)."""

    batch_max_messages: int = Field(default=5000, gt=0, le=100_000)
    """Messages handed to the pipeline in one payload at most."""
    batch_max_ms: int = Field(default=50, gt=0, le=10_000)
    """How long a message waits for others to fill its payload."""
    max_uncommitted_messages: int = Field(default=20_000, gt=0, le=1_000_000)
    """Messages handed to the pipeline and not yet committed, at most; past it
    the listener waits (TCP senders are pushed back, UDP waits in the kernel's
    buffer).  With the two batches gathering, it bounds what a crash loses."""


def header(
    received_ns: int, tz: str, *, peer: str | list[str] | None = None, **extra: Any
) -> bytes:
    """The first line of a ``syslog`` payload."""
    fields: dict[str, Any] = {"received_ns": received_ns, "tz": tz}
    if peer is not None:
        fields["peer"] = peer
    fields.update({key: value for key, value in extra.items() if value is not None})
    return orjson.dumps(fields) + b"\n"


class Batcher:
    """Messages from any number of peers, emitted in order as payloads.

    ``add`` never waits; producers that can wait (a TCP reader) call
    ``room`` after adding, which holds them while a full batch is blocked on
    the pipeline: that is TCP backpressure.  Producers that cannot (UDP) check
    ``full`` and drop and count instead.
    """

    def __init__(
        self,
        emit: Emit,
        settings: BatchSettings,
        origin: str,
        positions: str = "seq",
    ) -> None:
        self._emit = emit
        self._positions = positions
        self._tz = settings.timezone
        self._max = settings.batch_max_messages
        self._wait = settings.batch_max_ms / 1000
        self._origin = origin
        self._lines: list[bytes] = []
        self._peers: list[str] = []
        self._truncated: list[int] = []
        self._acks: list[tuple[int, Acknowledge]] = []
        self._first_ns = 0
        self._last_ns = 0
        self._filled = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._max_uncommitted = settings.max_uncommitted_messages
        self._uncommitted: deque[asyncio.Future[None]] = deque()
        self.uncommitted = 0
        """Messages emitted whose batch is not committed yet."""

    @property
    def full(self) -> bool:
        """Twice a batch is waiting: the pipeline is not keeping up."""
        return len(self._lines) >= 2 * self._max

    def add(
        self,
        message: bytes,
        peer: str,
        truncated: bool = False,
        acknowledge: Acknowledge | None = None,
    ) -> None:
        """Queue one message; ``acknowledge`` is called once its batch is settled."""
        lines = self._lines
        if not lines:
            self._first_ns = time.time_ns()
        if truncated:
            self._truncated.append(len(lines))
        if acknowledge is not None:
            self._acks.append((len(lines), acknowledge))
        if b"\n" in message:
            message = message.replace(b"\n", ESCAPED_NEWLINE)
        lines.append(message)
        self._peers.append(peer)
        if len(lines) >= self._max:
            self._filled.set()
            self._drained.clear()

    def extend(self, messages: list[bytes], peer: str) -> None:
        """Newline-framed messages of one peer (no newlines inside, none too long)."""
        if not messages:
            return
        lines = self._lines
        if not lines:
            self._first_ns = time.time_ns()
        lines.extend(messages)
        self._peers.extend([peer] * len(messages))
        if len(lines) >= self._max:
            self._filled.set()
            self._drained.clear()

    @property
    def blocked(self) -> bool:
        """A full batch waits for the pipeline: producers that can wait should."""
        return len(self._lines) >= self._max

    async def room(self) -> None:
        """Wait until a full batch has been handed to the pipeline."""
        if len(self._lines) >= self._max:
            await self._drained.wait()

    async def run(self) -> None:
        """Emit batches until cancelled; what is pending then is emitted first."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._filled.wait(), self._wait)
                await self.flush()
        except asyncio.CancelledError:
            await self.flush(bounded=False)  # shutting down: hand over, do not wait
            raise

    async def flush(self, *, bounded: bool = True) -> None:
        self._filled.clear()
        while self._lines:
            count = min(len(self._lines), self._max)
            if bounded:
                await self._committed_room(count)
            lines, self._lines = self._lines[:count], self._lines[count:]
            peers, self._peers = self._peers[:count], self._peers[count:]
            truncated = [i for i in self._truncated if i < count]
            self._truncated = [i - count for i in self._truncated if i >= count]
            acks = [ack for i, ack in self._acks if i < count]
            self._acks = [(i - count, ack) for i, ack in self._acks if i >= count]
            # Each batch gets its own receive time: with the message index it
            # makes a position no other message of this source has.
            received = self._last_ns = max(self._first_ns, self._last_ns + 1)
            self._first_ns = time.time_ns()
            first = peers[0]
            peer: str | list[str] = first if peers.count(first) == len(peers) else peers
            payload = header(
                received,
                self._tz,
                peer=peer,
                positions=self._positions,
                truncated=truncated or None,
            )
            committed = await self._emit(
                RawBatch("syslog", self._origin, payload + b"\n".join(lines))
            )
            self.uncommitted += count
            committed.add_done_callback(functools.partial(self._settled, count))
            if acks:
                committed.add_done_callback(functools.partial(_acknowledge, acks))
            self._uncommitted.append(committed)
        self._drained.set()

    def _settled(self, count: int, _: asyncio.Future[None]) -> None:
        self.uncommitted -= count

    async def _committed_room(self, count: int) -> None:
        """Wait, oldest batch first, until ``count`` more messages stay within
        ``max_uncommitted_messages``."""
        queue = self._uncommitted
        while queue and queue[0].done():
            queue.popleft()
        while queue and self.uncommitted + count > self._max_uncommitted:
            await asyncio.wait([queue.popleft()])  # its outcome is the pipeline's


def _acknowledge(acks: list[Acknowledge], committed: asyncio.Future[None]) -> None:
    """Tell each message of a settled batch how it went (a sender may resend on failure)."""
    error = committed.exception() if not committed.cancelled() else asyncio.CancelledError()
    for ack in acks:
        ack(error)
