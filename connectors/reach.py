"""Reachability checks for ``auditcorr doctor``: resolve, connect, TLS handshake; never send.

Outputs build their ``checks()`` from these, so every channel words a
refused port or an untrusted certificate the same way, with a hint.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

from connectors.base import Check

CHECK_SECS = 10.0


def tls_context(ca_file: object | None) -> ssl.SSLContext:
    """The client context an output uses: system CAs, or only ``ca_file`` when set."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


async def resolve(host: str, port: int) -> Check:
    """DNS (or /etc/hosts) lookup of ``host``."""
    name = f"resolve {host}"
    try:
        async with asyncio.timeout(CHECK_SECS):
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError) as err:
        return Check(
            name,
            False,
            _error(err),
            "check the host name in 'endpoint' and this host's DNS resolver",
        )
    addresses = sorted({str(info[4][0]) for info in found})
    return Check(name, True, ", ".join(addresses))


async def connect(host: str, port: int, tls: ssl.SSLContext | None) -> list[Check]:
    """Resolve, open a TCP connection and, with ``tls``, complete the handshake; then close."""
    resolved = await resolve(host, port)
    if not resolved.ok:
        return [resolved]
    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(CHECK_SECS):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as err:
        return [resolved, unreachable(where, err)]
    checks = [resolved, Check(f"connect {where}", True, "TCP connection opened")]
    try:
        if tls is not None:
            checks.append(await _handshake(writer, host, tls))
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(2):
                await writer.wait_closed()
    return checks


async def _handshake(writer: asyncio.StreamWriter, host: str, tls: ssl.SSLContext) -> Check:
    name = f"TLS handshake with {host}"
    try:
        async with asyncio.timeout(CHECK_SECS):
            await writer.start_tls(tls, server_hostname=host)
    except ssl.SSLCertVerificationError as err:
        return Check(name, False, _error(err), tls_hint(err))
    except (OSError, TimeoutError) as err:
        return Check(name, False, _error(err), "the port may not speak TLS; check the scheme")
    version = writer.get_extra_info("ssl_object")
    return Check(name, True, f"certificate verified ({version.version() if version else 'TLS'})")


def unreachable(where: str, err: BaseException) -> Check:
    """A failed connect, with what usually causes it."""
    if isinstance(err, ConnectionRefusedError):
        hint = "nothing listens there: is the receiver running, and is the port right?"
    elif isinstance(err, TimeoutError):
        hint = "no answer: a firewall may drop the traffic, or the host is down"
    else:
        hint = "check the network path (routes, firewall, proxy) to the receiver"
    return Check(f"connect {where}", False, _error(err), hint)


def tls_hint(err: BaseException) -> str:
    """What to do about a certificate that did not verify."""
    if isinstance(err, ssl.SSLCertVerificationError) and "hostname" in str(err).lower():
        return "the certificate is for another name: use the name it was issued for"
    return "set 'ca_file' to the CA that signed the receiver's certificate"


def _error(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return f"timed out after {CHECK_SECS:g}s"
    return str(err) or type(err).__name__
