"""A real rsyslogd relays to the daemon with ``omfwd`` over TCP, octet-counted."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from itsupport import Daemon, Workspace, wait_for
from syslogsupport import free_port, ports, rsyslogd, write_config

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]


def omfwd(forward_to: int) -> str:
    """rsyslog's forwarding action to the daemon: TCP, octet-counted, RFC 5424."""
    return (
        f'action(type="omfwd" target="127.0.0.1" port="{forward_to}" protocol="tcp"\n'
        '       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")'
    )


def test_rsyslog_relay_with_octet_counting(workspace: Workspace, daemons: StartDaemon) -> None:
    write_config(workspace, {"relay_in": {"type": "syslog_tcp", "listen": "tcp:127.0.0.1:0"}})
    daemon = daemons(workspace, "daemon")
    port = ports(daemon, 1)["relay_in"]
    relay = free_port()
    n = 300
    with rsyslogd(workspace.root / "rsyslog", relay, omfwd(port)):
        lines = b"".join(
            f"<38>Nov 27 12:{i // 60:02d}:{i % 60:02d} web-{i % 3} sshd[{1000 + i}]: "
            f"Failed password for user{i} from 192.0.2.{i % 250} port {2000 + i} ssh2\n".encode()
            for i in range(n)
        )
        with socket.create_connection(("127.0.0.1", relay)) as conn:
            conn.sendall(lines)
        wait_for(
            f"{n} relayed events", lambda: workspace.count() >= n, timeout=60, context=daemon.tail
        )
    docs = workspace.events_read()
    assert len(docs) == n
    assert {d["user"]["name"] for d in docs} == {f"user{i}" for i in range(n)}
    sample = next(d for d in docs if d["user"]["name"] == "user7")
    assert sample["event"]["outcome"] == "failure"
    assert sample["host"]["name"] == "web-1"
    assert sample["process"]["pid"] == 1007
    assert sample["source"] == {"ip": "192.0.2.7", "port": 2007}
    assert sample["event"]["original"].startswith("<38>1 ")  # relayed as RFC 5424
    assert daemon.stop() == 0
