"""The syslog output to real UDP, TCP and TLS receivers: RFC 5424 structured data and CEF."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from deliverysupport import delivering, free_port, make_alert, queue, wait_until

from connectors.base import OutputContext
from connectors.outputs.syslog import SyslogConfig, SyslogOutput
from daemon.store.sqlite import SqliteStore


@dataclass
class Collected:
    messages: list[bytes] = field(default_factory=list)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, into: Collected) -> None:
        self.into = into

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.into.messages.append(data)


async def _read_framed(into: Collected, reader: asyncio.StreamReader) -> None:
    """RFC 6587 octet counting: ``LEN SP MSG``."""
    while length := await reader.readuntil(b" "):
        into.messages.append(await reader.readexactly(int(length)))


@pytest.fixture
async def udp_receiver() -> AsyncIterator[tuple[str, Collected]]:
    got = Collected()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Datagrams(got), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    yield f"udp://127.0.0.1:{port}", got
    transport.close()


@contextlib.asynccontextmanager
async def stream_receiver(port: int = 0) -> AsyncIterator[tuple[int, Collected]]:
    """A framed-syslog listener; on exit its connections are cut, not waited for."""
    got = Collected()
    peers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await _read_framed(got, reader)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield server.sockets[0].getsockname()[1], got
    finally:
        # Not wait_closed(): it would wait for the peers, which the output keeps open.
        server.close()
        for writer in peers:
            writer.transport.abort()


async def test_udp_rfc5424_with_structured_data(
    store: SqliteStore, udp_receiver: tuple[str, Collected]
) -> None:
    """One datagram: PRI from facility and severity, the alert as SD params, UTF-8 text."""
    endpoint, got = udp_receiver
    outputs = {
        "siem": SyslogConfig.model_validate(
            {"type": "syslog", "endpoint": endpoint, "hostname": "corr1"}
        )
    }
    alert = make_alert(title='Login "without" MFA] ログイン')
    queue(store, outputs, [alert])
    async with delivering(store, outputs):
        await wait_until(lambda: got.messages)
    (message,) = got.messages
    text = message.decode()
    assert text.startswith("<107>1 2026-11-20T09:00:30Z corr1 auditcorr - alert [alert@32473 ")
    assert f'id="{alert.id}"' in text
    assert 'who="alice"' in text
    assert '\ufeff[HIGH] Login "without" MFA] ログイン' in text


async def test_tcp_cef_framed_and_escaped(store: SqliteStore) -> None:
    """CEF over TCP with octet counting; pipes and equals signs escaped where CEF wants."""
    async with stream_receiver() as (port, got):
        outputs = {
            "siem": SyslogConfig.model_validate(
                {"type": "syslog", "endpoint": f"tcp://127.0.0.1:{port}", "format": "cef"}
            )
        }
        alerts = [make_alert(n, title="a|b=c") for n in range(3)]
        queue(store, outputs, alerts)
        async with delivering(store, outputs):
            await wait_until(lambda: len(got.messages) == 3)
    for message in got.messages:
        cef = message.decode().split(" - alert - ", 1)[1]
        assert cef.startswith(
            "CEF:0|auditcorr|auditcorr|0.1.0|console_login_without_mfa|a\\|b=c|8|"
        )
        assert re.search(r"externalId=[0-9a-f]{32}", cef)
    ids = {re.search(r"externalId=([0-9a-f]+)", m.decode()).group(1) for m in got.messages}  # type: ignore[union-attr]
    assert ids == {alert.id for alert in alerts}


@contextlib.contextmanager
def tls_receiver(certificate: tuple[Path, Path]) -> Iterator[tuple[int, Collected]]:
    """A blocking TLS listener in a thread: one connection, framed messages until EOF."""
    got = Collected()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def serve() -> None:
        with (
            contextlib.suppress(OSError),
            listener.accept()[0] as raw,
            context.wrap_socket(raw, server_side=True) as conn,
        ):
            stream = conn.makefile("rb")
            while (length := _read_until_space(stream)) is not None:
                got.messages.append(stream.read(length))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], got
    finally:
        listener.close()


def _read_until_space(stream: Any) -> int | None:
    digits = b""
    while (char := stream.read(1)) not in (b" ", b""):
        digits += char
    return int(digits) if digits else None


async def test_tls_with_ca_file(store: SqliteStore, certificate: tuple[Path, Path]) -> None:
    """TLS to a receiver whose certificate the configured CA file vouches for."""
    with tls_receiver(certificate) as (port, got):
        outputs = {
            "siem": SyslogConfig.model_validate(
                {
                    "type": "syslog",
                    "endpoint": f"tls://127.0.0.1:{port}",
                    "ca_file": str(certificate[0]),
                }
            )
        }
        queue(store, outputs, [make_alert()])
        async with delivering(store, outputs):
            await wait_until(lambda: got.messages)
    assert b"[alert@32473" in got.messages[0]


async def test_receiver_down_then_up_delivers(store: SqliteStore) -> None:
    """Connection refused is retried; once a receiver listens the alert arrives."""
    port = free_port()
    outputs = {
        "siem": SyslogConfig.model_validate(
            {"type": "syslog", "endpoint": f"tcp://127.0.0.1:{port}"}
        )
    }
    queue(store, outputs, [make_alert()])
    async with delivering(store, outputs):
        await wait_until(lambda: any(r.attempts >= 1 for r in store.deliveries("pending")))
        async with stream_receiver(port=port) as (_, got):
            await wait_until(lambda: got.messages)
    assert len(got.messages) == 1


def _syslog(endpoint: str) -> SyslogOutput:
    config = SyslogConfig.model_validate({"type": "syslog", "endpoint": endpoint})
    return SyslogOutput(config, OutputContext("siem"))


async def test_checks_connect_over_tcp_and_send_nothing() -> None:
    """doctor's syslog checks: a TCP connect to the SIEM, no message; a refused port fails."""
    async with stream_receiver() as (port, got):
        resolved, connected = await _syslog(f"tcp://127.0.0.1:{port}").checks()
        await asyncio.sleep(0.1)
    assert resolved.ok, resolved
    assert connected.ok, connected
    assert got.messages == []
    _, refused = await _syslog(f"tcp://127.0.0.1:{free_port()}").checks()
    assert not refused.ok
    assert refused.name.startswith("connect 127.0.0.1:")
    assert "receiver running" in (refused.hint or "")


async def test_checks_over_udp_only_resolve_and_say_so() -> None:
    """UDP has no handshake: the check resolves the name and says delivery is unconfirmed."""
    resolved, note = await _syslog("udp://localhost:514").checks()
    assert resolved.ok
    assert note.ok
    assert "not confirmed" in note.detail
    (unknown,) = await _syslog("udp://no-such-host.invalid:514").checks()
    assert not unknown.ok
    assert "host name" in (unknown.hint or "")
