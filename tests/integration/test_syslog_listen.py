"""``auditcorr run`` with syslog listeners, fed by the real ``logger`` program."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from apisupport import ApiDaemon
from itsupport import Daemon, Workspace, wait_for
from metricsupport import samples, value
from syslogsupport import ports, write_config
from testdata import need

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]

ACCEPTED = "Accepted password for alice from 10.0.0.5 port 50022 ssh2"
FAILED = "Failed password for root from 203.0.113.9 port 4444 ssh2"


def logger(port: int, *args: str) -> None:
    argv = [need("logger"), "-n", "127.0.0.1", "-P", str(port), *args]
    subprocess.run(argv, check=True, timeout=10)


def _listeners(
    workspace: Workspace, daemons: StartDaemon, **extra: Any
) -> tuple[Daemon, dict[str, int]]:
    write_config(
        workspace,
        {
            "udp_in": {"type": "syslog_udp", "listen": "udp:127.0.0.1:0", **extra},
            "tcp_in": {"type": "syslog_tcp", "listen": "tcp:127.0.0.1:0", **extra},
        },
    )
    daemon = daemons(workspace, "daemon")
    return daemon, ports(daemon, 2)


def _wait_events(workspace: Workspace, daemon: Daemon, n: int) -> list[dict[str, Any]]:
    wait_for(f"{n} events", lambda: workspace.count() >= n, timeout=30, context=daemon.tail)
    return workspace.events_read()


def test_logger_rfc5424_and_rfc3164_over_udp_and_tcp(
    workspace: Workspace, daemons: StartDaemon
) -> None:
    daemon, port = _listeners(workspace, daemons)
    udp, tcp = port["udp_in"], port["tcp_in"]
    logger(udp, "-d", "--rfc5424", "-t", "sshd", "--id=812", "--msgid", "AUTH", ACCEPTED)
    logger(
        udp,
        "-d",
        "--rfc3164",
        "-t",
        "sudo",
        "alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id",
    )
    logger(
        tcp,
        "-T",
        "--rfc5424",
        "--octet-count",
        "-t",
        "useradd",
        "--sd-id",
        "meta@1",
        "--sd-param",
        'k="v"',
        "new user: name=carol, UID=1002, GID=1002, home=/home/carol, shell=/bin/sh",
    )
    logger(tcp, "-T", "--rfc3164", "-t", "systemd-logind", "New session 7 of user alice.")
    docs = _wait_events(workspace, daemon, 4)
    by_action = {d["event"].get("action"): d for d in docs}
    assert set(by_action) == {"ssh_login", "sudo", "user_created", "session_started"}

    login = by_action["ssh_login"]
    assert login["user"]["name"] == "alice"
    assert login["source"]["ip"] == "10.0.0.5"
    assert login["process"] == {"name": "sshd", "pid": 812}
    assert login["log"]["syslog"]["msgid"] == "AUTH"
    assert login["log"]["source"]["address"] == "127.0.0.1"
    assert login["host"]["name"] == socket.gethostname()
    assert login["event"]["original"].endswith(ACCEPTED)
    assert by_action["sudo"]["user"]["effective"]["name"] == "root"
    created = by_action["user_created"]
    assert created["user"]["target"]["name"] == "carol"
    assert created["log"]["syslog"]["structured_data"]["meta@1"] == {"k": "v"}
    assert by_action["session_started"]["user"]["name"] == "alice"
    assert daemon.stop() == 0
    [udp_stats] = [e for e in daemon.events("listener_stats") if e["component_id"] == "udp_in"]
    assert udp_stats["peers"]["127.0.0.1"]["messages"] == 2
    assert udp_stats["kernel_drops"] == 0
    [granted] = daemon.events("udp_receive_buffer")
    assert granted["granted"] > 0


def test_identical_lines_stay_distinct_and_bad_lines_are_kept(
    workspace: Workspace, daemons: StartDaemon
) -> None:
    daemon, port = _listeners(workspace, daemons, max_message_bytes=1024)
    tcp = port["tcp_in"]
    line = f"<38>Nov 27 12:00:01 bastion sshd[9]: {FAILED}\n".encode()
    idle = socket.create_connection(("127.0.0.1", tcp))  # stays open through the stop
    with socket.create_connection(("127.0.0.1", tcp)) as conn:
        conn.sendall(
            line * 3
            + b"this is not syslog\n"
            + b"<13>Nov 27 12:00:02 h big: "
            + b"x" * 5000
            + b"\n"
        )
    docs = _wait_events(workspace, daemon, 5)
    failed = [d for d in docs if d["event"].get("action") == "ssh_login"]
    assert len(failed) == 3
    assert len({d["event"]["id"] for d in failed}) == 3
    [raw] = [d for d in docs if "parse_error" in d.get("labels", {})]
    assert raw["message"] == "this is not syslog"
    assert raw["event"]["dataset"] == "system.syslog"
    [big] = [d for d in docs if d.get("labels", {}).get("truncated") == "true"]
    assert len(big["event"]["original"]) == 1024
    assert daemon.stop() == 0
    assert idle.recv(1) == b""  # the daemon closed the idle connection
    idle.close()
    stats = [e for e in daemon.events("listener_stats") if e["component_id"] == "tcp_in"]
    assert stats[-1]["peers"]["127.0.0.1"]["messages"] == 5
    assert stats[-1]["peers"]["127.0.0.1"]["truncated"] == 1


def test_listener_counters_are_on_metrics(workspace: Workspace, daemons: StartDaemon) -> None:
    """/metrics of the running daemon counts logger's messages, bytes, truncations,
    connections and unparsed lines per listener and peer, and the kernel's UDP drops."""
    write_config(
        workspace,
        {
            "udp_in": {"type": "syslog_udp", "listen": "udp:127.0.0.1:0"},
            "tcp_in": {"type": "syslog_tcp", "listen": "tcp:127.0.0.1:0", "max_message_bytes": 600},
        },
    )
    with workspace.config.open("a") as config:
        config.write('\n[api]\nlisten = "127.0.0.1:0"\n')
    daemon = daemons(workspace, "daemon")
    port = ports(daemon, 2)
    api = ApiDaemon(daemon)
    logger(port["udp_in"], "-d", "--rfc3164", "-t", "sshd", ACCEPTED)
    logger(port["udp_in"], "-d", "--rfc5424", "-t", "sshd", FAILED)
    logger(port["tcp_in"], "-T", "--rfc3164", "-t", "sshd", FAILED)
    logger(port["tcp_in"], "-T", "--rfc3164", "-t", "app", "x" * 1000)
    with socket.create_connection(("127.0.0.1", port["tcp_in"])) as conn:
        conn.sendall(b"this is not syslog\n")
    _wait_events(workspace, daemon, 5)

    def metrics() -> str | None:
        text = api.get("/metrics").body.decode()
        unparsed = value(samples(text), "auditcorr_records_unparsed_total", source="tcp_in")
        return text if unparsed == 1 else None

    text: str = wait_for("the counts on /metrics", metrics, timeout=20, context=daemon.tail)
    found = samples(text)
    udp = {"source": "udp_in", "peer": "127.0.0.1"}
    tcp = {"source": "tcp_in", "peer": "127.0.0.1"}
    assert value(found, "auditcorr_syslog_messages_total", **udp) == 2
    assert value(found, "auditcorr_syslog_messages_total", **tcp) == 3
    assert value(found, "auditcorr_syslog_messages_truncated_total", **tcp) == 1
    assert value(found, "auditcorr_syslog_messages_truncated_total", **udp) == 0
    assert value(found, "auditcorr_syslog_messages_dropped_total", **udp) == 0
    assert value(found, "auditcorr_syslog_connections_total", **tcp) == 3
    assert value(found, "auditcorr_syslog_connections_total", **udp) is None
    assert (value(found, "auditcorr_syslog_received_bytes_total", **tcp) or 0) > 1000
    assert value(found, "auditcorr_syslog_udp_kernel_drops_total", source="udp_in") == 0
    assert value(found, "auditcorr_syslog_connections_open", source="tcp_in") == 0
    assert value(found, "auditcorr_syslog_connections_rejected_total", **tcp) == 0
    assert value(found, "auditcorr_syslog_connection_errors_total", **tcp) == 0
    assert value(found, "auditcorr_records_unparsed_total", source="udp_in") == 0
    assert text.count("# TYPE auditcorr_syslog_messages_total counter") == 1
    assert daemon.stop() == 0
