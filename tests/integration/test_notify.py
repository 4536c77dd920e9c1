"""The daemon speaks systemd's notify protocol as a Type=notify service needs."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType

import pytest
from itsupport import Daemon, Workspace, generate, write_tree

pytestmark = pytest.mark.integration

StartDaemon = Callable[..., Daemon]


def _messages(sock: socket.socket, until: Callable[[list[str]], bool], timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not until(seen) and time.monotonic() < deadline:
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return seen


def test_ready_watchdog_status_and_stopping(
    workspace: Workspace, daemons: StartDaemon, ctgen: ModuleType
) -> None:
    """READY=1 once sources run, WATCHDOG=1 at half the interval, STOPPING=1 on SIGTERM."""
    records = generate(ctgen, 100, seed=41, span=timedelta(minutes=10))
    write_tree(ctgen, workspace.data, records)
    workspace.write_config()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(workspace.root / "notify.sock")
    sock.bind(path)
    sock.settimeout(0.5)
    try:
        daemon = daemons(workspace, "daemon", {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
        seen = _messages(sock, lambda s: any("WATCHDOG=1" in m for m in s), timeout=30)
        ready = [m for m in seen if m.startswith("READY=1")]
        assert ready, f"no READY=1 in {seen}\n{daemon.tail()}"
        assert f"MAINPID={daemon.pid}" in ready[0]
        assert any("WATCHDOG=1" in m for m in seen), seen
        status = _messages(sock, lambda s: any("events stored" in m for m in s), timeout=10)
        assert any("sources" in m and "events stored" in m for m in seen + status)
        assert daemon.stop() == 0
        after = _messages(sock, lambda s: any("STOPPING=1" in m for m in s), timeout=5)
        assert any(m.startswith("STOPPING=1") for m in after), after
    finally:
        sock.close()
