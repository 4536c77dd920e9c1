"""``syslog_tls``: RFC 5425 over TLS with a test CA, with and without client certificates."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from itsupport import Daemon, Workspace, wait_for
from syslogsupport import ports, write_config
from testdata import need

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([need("openssl"), *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(folder: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    folder.mkdir()
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=test-ca", cwd=folder)  # fmt: skip
    for name, extension in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        _openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
        (folder / f"{name}.ext").write_text(extension + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=folder)  # fmt: skip
    return folder


def send(port: int, pki: Path, data: bytes, *, client_cert: bool) -> None:
    context = ssl.create_default_context(cafile=pki / "ca.pem")
    if client_cert:
        context.load_cert_chain(pki / "client.pem", pki / "client.key")
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(data)
        tls.unwrap()


def frame(message: str) -> bytes:
    body = message.encode()
    return f"{len(body)} ".encode() + body


def test_tls_listener_with_client_certificates(workspace: Workspace, daemons: StartDaemon) -> None:
    pki = make_pki(workspace.root / "pki")
    tls = {"cert_file": pki / "server.pem", "key_file": pki / "server.key"}
    write_config(
        workspace,
        {
            "tls_in": {"type": "syslog_tls", "listen": "tls:127.0.0.1:0", **tls},
            "mtls_in": {
                "type": "syslog_tls",
                "listen": "tls:127.0.0.1:0",
                "client_ca_file": pki / "ca.pem",
                **tls,
            },
        },
    )
    daemon = daemons(workspace, "daemon")
    port = ports(daemon, 2)
    line = "<86>1 2026-11-27T12:00:00Z bastion su - - - (to root) alice on pts/0"
    send(port["tls_in"], pki, frame(line) + frame(line.replace("alice", "bob")), client_cert=False)
    send(port["mtls_in"], pki, frame(line.replace("alice", "carol")), client_cert=True)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        # Without a client certificate the handshake (or the first read) fails.
        send(port["mtls_in"], pki, frame(line.replace("alice", "mallory")), client_cert=False)
    wait_for("3 events", lambda: workspace.count() >= 3, timeout=30, context=daemon.tail)
    docs = workspace.events_read()
    assert sorted(d["user"]["name"] for d in docs) == ["alice", "bob", "carol"]
    assert all(d["event"]["action"] == "su" for d in docs)
    assert daemon.stop() == 0
