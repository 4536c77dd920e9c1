"""Splitting a syslog TCP stream into messages (RFC 6587).

A stream is read either as newline-framed lines or as octet-counted frames
(``LEN SP MSG``), decided by its first byte: a digit means octet counting
(rsyslog's ``omfwd`` with ``TCP_Framing="octet-counted"``, RFC 5425 senders),
anything else newline framing (``logger``, syslog-ng's default).  A message
longer than the limit is cut there and flagged; the rest of it is skipped.
"""

from __future__ import annotations

import re

from connectors.syslog.batch import ESCAPED_NEWLINE

_FRAME_START = re.compile(rb"(?<![0-9])[1-9][0-9]{0,8} <")
"""Where an octet-counted frame can begin: its count, a space and the PRI."""


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
