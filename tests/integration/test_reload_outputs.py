"""SIGHUP and outputs: a changed output restarts with its new endpoint, an added one starts,
a removed one stops with its pending alerts kept, an unchanged one runs on."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from itsupport import REPO, Daemon, Workspace, toml_value
from syslogsupport import ports

sys.path.insert(0, str(REPO / "tests" / "daemon" / "delivery"))

from deliverysupport import Receiver, free_port

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]

RULE = REPO / "examples" / "rules" / "ssh_login_accepted.yml"
"""One alert per accepted SSH login and user."""


def write_config(workspace: Workspace, outputs: dict[str, str]) -> None:
    """A syslog TCP listener, one rule alerting per user, and webhook outputs by endpoint."""
    lines = [
        "[daemon]",
        f"state_dir = {toml_value(workspace.state)}",
        'log_format = "json"',
        "workers = 1",
        "[store]",
        "retention_days = 0",
        "[sources.tcp_in]",
        'type = "syslog_tcp"',
        'listen = "tcp:127.0.0.1:0"',
        "batch_max_ms = 10",
        "[rules]",
        "builtin = false",
        f"paths = [{toml_value(RULE)}]",
    ]
    for name, endpoint in outputs.items():
        lines += [
            f"[outputs.{name}]",
            'type = "webhook"',
            f"endpoint = {toml_value(endpoint)}",
            "timeout_secs = 2",
        ]
    workspace.config.write_text("\n".join(lines) + "\n")


def login(port: int, user: str) -> None:
    """One accepted SSH login over syslog TCP: the rule raises an alert for ``user``."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message = f"Accepted password for {user} from 10.0.0.5 port 50022 ssh2"
    line = f"<38>1 {stamp} bastion sshd 812 - - {message}\n"
    with socket.create_connection(("127.0.0.1", port), 5) as connection:
        connection.sendall(line.encode())


async def until(what: str, check: Callable[[], object], daemon: Daemon, within: float = 30) -> None:
    """Poll without blocking the loop the receivers run on."""
    try:
        async with asyncio.timeout(within):
            while not check():  # noqa: ASYNC110 - the daemon's log cannot signal an event
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}\n{daemon.tail(60)}")


def users(receiver: Receiver) -> list[str]:
    return [r.json["group"]["user.name"] for r in receiver.accepted]


async def test_sighup_applies_output_changes(workspace: Workspace, daemons: StartDaemon) -> None:
    """The next alert after the reload goes to the new endpoint; nothing else restarts."""
    refused = f"http://127.0.0.1:{free_port()}/hook"
    async with Receiver() as old, Receiver() as new, Receiver() as steady, Receiver() as added:
        write_config(workspace, {"hook": old.url, "steady": steady.url, "gone": refused})
        daemon = daemons(workspace, "daemon")
        (port,) = ports(daemon, 1).values()
        login(port, "before")
        await until("the first alert", lambda: users(old) and users(steady), daemon)

        write_config(workspace, {"hook": new.url, "steady": steady.url, "added": added.url})
        daemon.signal(signal.SIGHUP)
        await until("config_reloaded", lambda: daemon.events("output_removed"), daemon)
        await until("the new outputs", lambda: len(daemon.events("output_started")) == 5, daemon)
        login(port, "after")
        await until(
            "the second alert",
            lambda: users(new) and users(added) and len(users(steady)) == 2,
            daemon,
        )
        assert daemon.stop() == 0, daemon.tail()

    assert users(old) == ["before"]
    assert users(new) == ["after"]
    assert users(added) == ["after"]
    assert users(steady) == ["before", "after"]
    started = Counter(e["component_id"] for e in daemon.events("output_started"))
    assert started == {"hook": 2, "steady": 1, "gone": 1, "added": 1}, daemon.tail()
    (removed,) = daemon.events("output_removed")
    assert removed["output"] == "gone"
    assert removed["pending"] == 1, "the alert it never delivered stays in the outbox"
    pending = workspace.cli("alerts", "--pending")
    assert pending.returncode == 0, str(pending)
    assert "pending per output: gone=1" in pending.stdout, str(pending)
