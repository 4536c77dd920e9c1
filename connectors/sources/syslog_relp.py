"""Syslog over RELP, the Reliable Event Logging Protocol of rsyslog's ``omrelp``.

A RELP session is a TCP (or TLS) connection of frames ``TXNR SP COMMAND SP
DATALEN [SP DATA] LF``: the client opens (``open`` with its offers), sends
``syslog`` commands and ends with ``close``; the server answers each frame
with ``TXNR rsp LEN 200 OK`` (or ``500 ...``) and announces its own shutdown
with ``serverclose``.  See https://www.rsyslog.com/doc/relp.html.

A ``syslog`` command is answered only once the batch holding its message is
committed; the sender keeps what it has not seen answered and sends it again
after reconnecting, with new transaction numbers.  So a ``kill -9`` loses
nothing, and because these batches say ``positions = "content"`` (see
daemon/normalize/syslog.py) a message sent again gets the event id it had the
first time and is stored once.

Connections, limits, counting and backpressure are the stream listener's
(connectors/syslog/stream.py, shared with ``syslog_tcp``); only the framing and
the answers are RELP's.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

from pydantic import model_validator

from connectors.config import ConfigPath
from connectors.syslog.batch import Batcher
from connectors.syslog.listener import server_tls
from connectors.syslog.stream import StreamConnection, StreamListener, StreamSettings

SOFTWARE = b"auditcorr"
_OFFERS = b"200 OK\nrelp_version=0\nrelp_software=" + SOFTWARE + b"\ncommands=syslog"
_SERVERCLOSE = b"0 serverclose 0\n"
_HEADER = re.compile(rb"([0-9]{1,9}) ([a-z]{1,32}) ([0-9]{1,9})([ \n])")
_HEADER_START = re.compile(rb"[0-9]{0,9}( ([a-z]{0,32}( [0-9]{0,9})?)?)?")
_HEADER_MAX = 54
"""Longest header: 9-digit txnr, 32-letter command, 9-digit length, three separators."""


class SyslogRelpConfig(StreamSettings):
    scheme: ClassVar[str] = "relp"
    type: Literal["syslog_relp"] = "syslog_relp"
    cert_file: ConfigPath | None = None
    """Server certificate chain (PEM); with ``key_file`` the listener speaks TLS."""
    key_file: ConfigPath | None = None
    """Private key of ``cert_file`` (PEM)."""
    client_ca_file: ConfigPath | None = None
    """When set, clients must present a certificate signed by this CA (needs TLS)."""

    @model_validator(mode="after")
    def _tls_complete(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file: both or neither")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("client_ca_file needs cert_file and key_file (TLS)")
        return self


@dataclass(frozen=True, slots=True)
class Frame:
    txnr: int
    command: str
    data: bytes
    truncated: bool = False
    """DATA was longer than the limit and was cut to it."""


class RelpError(ConnectionError):
    """The stream holds something that is not a RELP frame; the frames before it
    are in ``frames`` so that they are still answered."""

    def __init__(self, reason: str, frames: list[Frame]) -> None:
        super().__init__(reason)
        self.frames = frames


class RelpParser:
    """Splits a RELP stream into frames; DATA past ``limit`` bytes is dropped as it
    arrives, so a long frame costs no more memory than the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._head: tuple[int, str, int] | None = None
        self._data = bytearray()
        self._left = 0

    @property
    def waiting(self) -> bool:
        """A frame has begun and is not complete."""
        return self._head is not None or bool(self._buffer)

    def feed(self, chunk: bytes) -> list[Frame]:
        """The frames completed by ``chunk``; raises RelpError on a broken one."""
        self._buffer += chunk
        frames: list[Frame] = []
        while True:
            if self._head is None and not self._header(frames):
                return frames
            if (frame := self._body(frames)) is None:
                return frames
            frames.append(frame)

    def _header(self, frames: list[Frame]) -> bool:
        buffer = self._buffer
        found = _HEADER.match(buffer)
        if found is None:
            start = buffer[:_HEADER_MAX]
            if len(buffer) >= _HEADER_MAX or not _HEADER_START.fullmatch(start):
                raise self._broken(frames)
            return False
        txnr, command, length = int(found[1]), found[2].decode(), int(found[3])
        if found[4] == b"\n" and length:
            raise self._broken(frames)
        del buffer[: found.end() - (1 if found[4] == b"\n" else 0)]
        self._head, self._left = (txnr, command, length), length
        return True

    def _body(self, frames: list[Frame]) -> Frame | None:
        buffer = self._buffer
        if self._left:
            taken = min(self._left, len(buffer))
            room = self.limit - len(self._data)
            self._data += buffer[: min(taken, room)]
            del buffer[:taken]
            self._left -= taken
            if self._left:
                return None
        if not buffer:
            return None
        if buffer[0] != 0x0A:  # the trailer
            raise self._broken(frames)
        del buffer[:1]
        assert self._head is not None
        txnr, command, length = self._head
        frame = Frame(txnr, command, bytes(self._data), truncated=length > self.limit)
        self._head, self._data = None, bytearray()
        return frame

    def _broken(self, frames: list[Frame]) -> RelpError:
        shown = bytes(self._buffer[:20])
        self._buffer.clear()
        self._head = None
        return RelpError(f"not a RELP frame at {shown!r}", frames)


class SyslogRelpSource(StreamListener):
    """A RELP listener: the stream listener with RELP sessions on its connections."""

    config_model = SyslogRelpConfig
    config: SyslogRelpConfig
    positions = "content"

    @property
    def connection(self) -> type[StreamConnection]:
        return _RelpConnection

    def _tls(self) -> ssl.SSLContext | None:
        config = self.config
        if config.cert_file is None or config.key_file is None:
            return None
        return server_tls(config.cert_file, config.key_file, config.client_ca_file)


class _RelpConnection(StreamConnection):
    """One RELP session: frames in, each ``syslog`` answered once committed."""

    def __init__(self, source: StreamListener, batcher: Batcher) -> None:
        super().__init__(source, batcher)
        self.parser = RelpParser(source.config.max_message_bytes)
        self.session_open = False
        self.pending = 0
        """``syslog`` commands not answered yet (their batch is not committed)."""
        self.closing: int | None = None
        """The txnr of the client's ``close``, answered once nothing is pending."""

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.last = asyncio.get_running_loop().time()
        self.counters.bytes += len(data)
        try:
            frames = self.parser.feed(data)
        except RelpError as err:
            self._answer_all(err.frames)
            self._fail(str(err))
            return
        self._answer_all(frames)
        self.hold_back()

    def _answer_all(self, frames: list[Frame]) -> None:
        for frame in frames:
            if self.transport is None or self.closing is not None:
                return
            self._answer(frame)

    def _answer(self, frame: Frame) -> None:
        if frame.command == "open":
            self._open(frame)
        elif not self.session_open:
            self._respond(frame.txnr, b"500 the session is not open")
            self._fail(f"{frame.command} before open")
        elif frame.command == "syslog":
            self._message(frame)
        elif frame.command == "close":
            self.closing = frame.txnr
            self._close_when_done()
        else:
            self._respond(frame.txnr, b"500 unknown command " + frame.command.encode())

    def _open(self, frame: Frame) -> None:
        offers = dict(line.partition(b"=")[::2] for line in frame.data.splitlines())
        if b"syslog" not in offers.get(b"commands", b"").split(b","):
            self._respond(frame.txnr, b"500 this server only takes the syslog command")
            self._fail("client does not offer the syslog command")
            return
        self.session_open = True
        self._respond(frame.txnr, _OFFERS)

    def _message(self, frame: Frame) -> None:
        message = frame.data.rstrip(b"\r\n")
        self.counters.messages += 1
        if frame.truncated:
            self.counters.truncated += 1
        self.pending += 1
        acknowledge = functools.partial(self._committed, frame.txnr)
        self.batcher.add(message, self.peer, frame.truncated, acknowledge)

    def _committed(self, txnr: int, error: BaseException | None) -> None:
        """The batch holding ``txnr`` settled: answer it, or end the session on a
        failed commit so that the sender sends what was not answered again."""
        self.pending -= 1
        if self.transport is None:
            return
        if error is not None:
            self._fail(f"commit failed: {error!r}")
            return
        self._respond(txnr, b"200 OK")
        self._close_when_done()

    def _close_when_done(self) -> None:
        if self.closing is not None and not self.pending and self.transport is not None:
            self._respond(self.closing, b"")
            self.source.closed(self)
            transport, self.transport = self.transport, None
            transport.close()

    def _respond(self, txnr: int, data: bytes) -> None:
        if self.transport is not None:
            sized = b" " + data if data else b""
            self.transport.write(b"%d rsp %d%s\n" % (txnr, len(data), sized))

    def check(self, now: float, idle: float, frame: float) -> None:
        """A frame that stays incomplete ends the session; a session with messages
        waiting for their commit is not idle."""
        if self.transport is None or self.paused:
            return
        if self.parser.waiting:
            if now - self.last >= frame:
                self.counters.incomplete_frames += 1
                self.source.note("frame_incomplete", self.peer, timeout_secs=frame)
                self._fail("incomplete RELP frame")
        elif not self.pending and now - self.last >= idle:
            self.counters.idle_closed += 1
            self.finish()

    def finish(self) -> None:
        """Tell the client the server closes (it resends what is unanswered)."""
        if self.transport is not None:
            self.transport.write(_SERVERCLOSE)
        super().finish()
