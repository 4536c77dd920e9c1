"""A real rsyslogd relays to the daemon with ``omrelp``; kill -9 loses and doubles nothing."""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from itsupport import Daemon, Workspace, wait_for
from syslogsupport import free_port, rsyslogd, write_config
from test_syslog_tls import make_pki
from testdata import unavailable

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]
OMRELP_GLOB = "/usr/lib/*/rsyslog/omrelp.so"
"""Where Debian's rsyslog-relp puts omrelp, whatever the architecture."""


def rsyslogd_relp(
    folder: Path, listen: int, relp_port: int, tls: str = ""
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """rsyslogd: imtcp in, omrelp out, retrying for ever while the daemon is away (its
    queue holds what is not acknowledged)."""
    if not glob.glob(OMRELP_GLOB):
        unavailable(
            f"rsyslog's omrelp module ({OMRELP_GLOB}, Debian package rsyslog-relp) is not installed"
        )
    action = (
        f'action(type="omrelp" target="127.0.0.1" port="{relp_port}"\n'
        '       queue.type="LinkedList" queue.size="200000"\n'
        f'       action.resumeRetryCount="-1" action.resumeInterval="1" {tls})'
    )
    return rsyslogd(folder, listen, action, modules=("omrelp",))


def numbered(n: int) -> bytes:
    """``n`` syslog lines, each carrying its number."""
    return b"".join(
        f"<86>Nov 27 12:{i // 6000 % 60:02d}:{i // 100 % 60:02d} web-{i % 3} relaytest[42]: "
        f"numbered message {i:06d}\n".encode()
        for i in range(n)
    )


def numbers_stored(workspace: Workspace) -> Counter[int]:
    return Counter(
        int(doc["message"].rsplit(" ", 1)[1])
        for doc in workspace.events_read()
        if "numbered message" in doc.get("message", "")
    )


def relp_config(workspace: Workspace, port: int) -> None:
    write_config(
        workspace, {"relp_in": {"type": "syslog_relp", "listen": f"relp:127.0.0.1:{port}"}}
    )


def test_rsyslog_omrelp_relay(workspace: Workspace, daemons: StartDaemon) -> None:
    """Messages relayed by rsyslog's omrelp arrive once each, parsed."""
    port = free_port()
    relp_config(workspace, port)
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    n = 500
    relay = free_port()
    with rsyslogd_relp(workspace.root / "rsyslog", relay, port):
        with socket.create_connection(("127.0.0.1", relay)) as conn:
            conn.sendall(numbered(n))
        wait_for(f"{n} events", lambda: workspace.count() >= n, timeout=60, context=daemon.tail)
    assert daemon.stop() == 0, daemon.tail()
    assert numbers_stored(workspace) == Counter(range(n))
    sample = next(d for d in workspace.events_read() if d["message"].endswith("000007"))
    assert sample["host"]["name"] == "web-1"
    assert sample["process"]["pid"] == 42


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill_9", "sigterm"])
def test_stop_mid_stream_then_restart_stores_every_message_once(
    stop: signal.Signals, workspace: Workspace, daemons: StartDaemon
) -> None:
    """kill -9 (or SIGTERM, whose last batch is committed but never answered) of the
    daemon while rsyslog streams by RELP, then a restart on the same store: every
    numbered message is in the timeline exactly once."""
    port = free_port()
    relp_config(workspace, port)
    first = daemons(workspace, "first")
    first.wait_started()
    n = 30_000
    relay = free_port()
    with rsyslogd_relp(workspace.root / "rsyslog", relay, port):
        with socket.create_connection(("127.0.0.1", relay)) as conn:
            conn.sendall(numbered(n))
        wait_for(
            "a fifth stored",
            lambda: workspace.count() >= n // 5,
            timeout=120,
            interval=0.02,
            context=first.tail,
        )
        os.kill(first.pid, stop)
        assert first.proc is not None
        assert first.proc.wait(30) == (-stop if stop == signal.SIGKILL else 0)
        at_stop = workspace.count()
        assert at_stop < n, "the stream ended before the daemon was stopped"

        second = daemons(workspace, "second")
        second.wait_started()
        wait_for(f"{n} events", lambda: workspace.count() >= n, timeout=180, context=second.tail)
        assert second.stop() == 0, second.tail()
    stored = numbers_stored(workspace)
    assert set(stored) == set(range(n)), f"lost: {sorted(set(range(n)) - set(stored))[:20]}"
    doubled = {number: times for number, times in stored.items() if times > 1}
    assert not doubled, f"doubled: {list(doubled.items())[:20]}"
    first.kill_group()


def test_rsyslog_omrelp_over_tls_with_a_client_certificate(
    workspace: Workspace, daemons: StartDaemon
) -> None:
    """omrelp with TLS and a client certificate reaches a listener that requires one."""
    pki = make_pki(workspace.root / "pki")
    port = free_port()
    settings = {
        "type": "syslog_relp",
        "listen": f"relp:127.0.0.1:{port}",
        "cert_file": pki / "server.pem",
        "key_file": pki / "server.key",
        "client_ca_file": pki / "ca.pem",
    }
    write_config(workspace, {"relp_in": settings})
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    tls = (
        f'tls="on" tls.caCert="{pki / "ca.pem"}" tls.myCert="{pki / "client.pem"}" '
        f'tls.myPrivKey="{pki / "client.key"}" tls.authMode="name" tls.permittedPeer="server"'
    )
    n = 50
    relay = free_port()
    with rsyslogd_relp(workspace.root / "rsyslog", relay, port, tls):
        with socket.create_connection(("127.0.0.1", relay)) as conn:
            conn.sendall(numbered(n))
        wait_for(f"{n} events", lambda: workspace.count() >= n, timeout=60, context=daemon.tail)
    assert daemon.stop() == 0, daemon.tail()
    assert numbers_stored(workspace) == Counter(range(n))
