"""``syslog_relp``: RELP framing, the session's answers over a real socket (each
``syslog`` answered only once committed), and content-addressed event ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import ValidationError
from test_syslog_tcp_limits import Intake, _free_port

from connectors.base import SourceContext
from connectors.sources.syslog_relp import (
    Frame,
    RelpError,
    RelpParser,
    SyslogRelpConfig,
    SyslogRelpSource,
)
from daemon.normalize import Limits
from daemon.normalize.syslog import decode, normalize

OPEN = b"relp_version=0\nrelp_software=librelp,1.11.0,https://librelp.adiscon.com\ncommands=syslog"
LINE = b"<86>Nov 27 12:00:00 web-1 sshd[42]: Accepted publickey for alice"


def frame(txnr: int, command: str, data: bytes = b"") -> bytes:
    return b"%d %s %d%s\n" % (txnr, command.encode(), len(data), b" " + data if data else b"")


STREAM = frame(1, "open", OPEN) + frame(2, "syslog", LINE) + frame(3, "close")
PARSED = [Frame(1, "open", OPEN), Frame(2, "syslog", LINE), Frame(3, "close", b"")]


def test_frames_split_anywhere_parse_the_same() -> None:
    """A stream cut at any byte yields the same frames as when it came whole."""
    ends = {len(frame(1, "open", OPEN)), len(STREAM) - len(frame(3, "close"))}
    for cut in range(1, len(STREAM)):
        parser = RelpParser(1024)
        frames = parser.feed(STREAM[:cut])
        assert parser.waiting == (cut not in ends), cut
        frames += parser.feed(STREAM[cut:])
        assert frames == PARSED, cut
        assert not parser.waiting


def test_frames_byte_by_byte() -> None:
    """Frames fed one byte at a time come out whole and in order."""
    parser = RelpParser(1024)
    frames = [found for byte in STREAM for found in parser.feed(bytes([byte]))]
    assert frames == PARSED


@pytest.mark.parametrize(
    "bad",
    [b"x syslog 3 abc\n", b"4 syslog 3 abcX", b"5 SYSLOG 0\n", b"6 syslog 2\nab\n", b"1" * 60],
    ids=["txnr", "trailer", "command", "length_without_data", "endless_number"],
)
def test_broken_frame_is_an_error_that_keeps_the_frames_before_it(bad: bytes) -> None:
    """Something that is not a frame raises RelpError; the frames before it survive."""
    parser = RelpParser(1024)
    with pytest.raises(RelpError) as caught:
        parser.feed(frame(1, "open", OPEN) + bad)
    assert caught.value.frames == [Frame(1, "open", OPEN)]


def test_data_past_the_limit_is_cut_and_flagged() -> None:
    """DATA longer than the limit is cut to it and flagged; the next frame still parses."""
    parser = RelpParser(600)
    long = b"<13>" + b"a" * 2000
    frames = parser.feed(frame(7, "syslog", long)[:900])
    frames += parser.feed(frame(7, "syslog", long)[900:] + frame(8, "syslog", LINE))
    assert frames == [Frame(7, "syslog", long[:600], truncated=True), Frame(8, "syslog", LINE)]


def test_tls_settings_come_in_pairs() -> None:
    """cert_file without key_file, or a client CA without TLS, is a config error."""
    with pytest.raises(ValidationError, match="both or neither"):
        SyslogRelpConfig(listen="relp:127.0.0.1:0", cert_file="/x.pem")
    with pytest.raises(ValidationError, match="needs cert_file"):
        SyslogRelpConfig(listen="relp:127.0.0.1:0", client_ca_file="/ca.pem")
    with pytest.raises(ValidationError, match="relp:HOST:PORT"):
        SyslogRelpConfig(listen="tcp:127.0.0.1:0")


@asynccontextmanager
async def relp_intake(**settings: Any) -> AsyncIterator[Intake]:
    """A ``syslog_relp`` source on a free port, holding every batch uncommitted."""
    port = _free_port()
    config = SyslogRelpConfig(listen=f"relp:127.0.0.1:{port}", batch_max_ms=10, **settings)
    running = Intake(SyslogRelpSource(config, SourceContext("relp_in", {})), port)
    running.holding = True
    task = asyncio.create_task(running.source.run(running.emit))
    for _ in range(200):
        try:
            await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.02)
    try:
        yield running
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def answer(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(5):
        return await reader.readuntil(b"\n")


async def test_syslog_is_answered_only_after_its_batch_is_committed() -> None:
    """``open`` is answered with the offers; a ``syslog`` waits for the commit, then 200 OK;
    ``close`` is answered and ends the session."""
    async with relp_intake() as running:
        reader, writer = await running.connect()
        writer.write(frame(1, "open", OPEN) + frame(2, "syslog", LINE))
        opened = await reader.readuntil(b"commands=syslog\n")
        assert opened.startswith(b"1 rsp ")
        assert b" 200 OK\nrelp_version=0\n" in opened
        await running.until("the batch emitted", lambda: len(running.held) == 1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await reader.readuntil(b"\n")
        running.release()
        assert await answer(reader) == b"2 rsp 6 200 OK\n"
        writer.write(frame(3, "close"))
        assert await answer(reader) == b"3 rsp 0\n"
        assert await reader.read() == b""
        assert LINE in running.lines


async def test_close_waits_for_pending_answers() -> None:
    """A ``close`` after unanswered messages is answered after them, never before."""
    async with relp_intake() as running:
        reader, writer = await running.connect()
        writer.write(frame(1, "open", OPEN))
        await answer(reader)
        await reader.readuntil(b"syslog\n")
        writer.write(frame(2, "syslog", LINE) + frame(3, "close"))
        await running.until("the batch emitted", lambda: len(running.held) == 1)
        running.release()
        assert await answer(reader) == b"2 rsp 6 200 OK\n"
        assert await answer(reader) == b"3 rsp 0\n"


async def test_a_failed_commit_ends_the_session_unanswered() -> None:
    """When the batch fails to commit the session ends without answering, so the
    sender sends the message again."""
    async with relp_intake() as running:
        reader, writer = await running.connect()
        writer.write(frame(1, "open", OPEN))
        await answer(reader)
        await reader.readuntil(b"syslog\n")
        writer.write(frame(2, "syslog", LINE))
        await running.until("the batch emitted", lambda: len(running.held) == 1)
        running.held[0].set_exception(RuntimeError("store down"))
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        assert running.source.peers["127.0.0.1"].errors == 1


async def test_commands_before_open_are_refused() -> None:
    """A ``syslog`` before ``open`` is answered 500 and the session ends."""
    async with relp_intake() as running:
        reader, writer = await running.connect()
        writer.write(frame(1, "syslog", LINE))
        assert (await answer(reader)).startswith(b"1 rsp 27 500 the session is not open")
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        assert running.held == []


async def test_open_without_the_syslog_command_is_refused() -> None:
    """A client that does not offer ``syslog`` is answered 500 and the session ends."""
    async with relp_intake() as running:
        reader, writer = await running.connect()
        writer.write(frame(1, "open", b"relp_version=0\ncommands=other"))
        assert b" 500 " in await answer(reader)
        async with asyncio.timeout(5):
            assert await reader.read() == b""


async def test_shutdown_sends_serverclose() -> None:
    """When the listener stops, each open session is told by ``serverclose``."""
    async with relp_intake() as running:
        reader, writer = await running.connect()
        writer.write(frame(1, "open", OPEN))
        await answer(reader)
        await reader.readuntil(b"syslog\n")
        await running.until("the session counted", lambda: bool(running.source._open))
    async with asyncio.timeout(5):
        assert await reader.read() == b"0 serverclose 0\n"


async def test_broken_frame_ends_the_session_and_is_counted() -> None:
    """A stream that is not RELP ends the session and counts an error for the peer."""
    async with relp_intake() as running:
        reader, writer = await running.connect()
        writer.write(b"<13>Nov 27 12:00:00 plain syslog\n")
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        assert running.source.peers["127.0.0.1"].errors == 1


def _ids(*batches: list[bytes]) -> list[list[str]]:
    limits = Limits()
    ids = []
    for received, lines in enumerate(batches, start=1):
        head = b'{"received_ns": %d, "tz": "UTC", "peer": "10.0.0.5", "positions": "content"}\n'
        payload = head % (received * 10**9) + b"\n".join(lines)
        ids.append([normalize(record).id for record in decode(payload, limits)])
    return ids


def test_content_ids_survive_a_resend_and_keep_repeats_apart() -> None:
    """With content positions a message resent in a later batch keeps its id, while two
    identical messages sent in one batch stay two events."""
    other = LINE.replace(b"alice", b"bob")
    first, resent = _ids([LINE, other, LINE], [other, LINE])
    assert first[0] != first[2]
    assert resent == [first[1], first[0]]
