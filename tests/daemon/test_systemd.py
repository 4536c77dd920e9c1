"""The notify protocol against a real datagram socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.systemd import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def test_ready_status_watchdog_and_stopping_reach_the_socket(
    listener: tuple[socket.socket, str],
) -> None:
    """Each call sends one datagram with the protocol's KEY=value lines."""
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.ready("2 sources")
    assert sock.recv(4096).decode().splitlines() == [
        "READY=1",
        "STATUS=2 sources",
        f"MAINPID={os.getpid()}",
    ]
    notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.stopping()
    assert sock.recv(4096).decode().splitlines()[0] == "STOPPING=1"


def test_abstract_socket_names_are_understood() -> None:
    """A NOTIFY_SOCKET starting with '@' is a socket in the abstract namespace."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"auditcorr-test-{os.getpid()}"
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).status("ok")
        assert sock.recv(4096) == b"STATUS=ok"
    finally:
        sock.close()


def test_outside_systemd_nothing_is_sent_and_nothing_fails() -> None:
    """Without NOTIFY_SOCKET the notifier is off and its calls do nothing."""
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.watchdog_secs is None
    with capture_logs() as logs:
        notifier.ready("x")
        notifier.stopping()
    assert logs == [], "a send was tried: it failed for want of an address"


def test_watchdog_interval_only_for_this_process() -> None:
    """WATCHDOG_USEC counts only when WATCHDOG_PID is absent or names this process."""
    mine = Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_secs == 30.0
    other = Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_secs is None


def test_a_vanished_socket_is_logged_not_raised(tmp_path: Path) -> None:
    """A notify socket that went away costs a warning, never the daemon."""
    with capture_logs() as logs:
        Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready("x")
    (warning,) = logs
    assert warning["event"] == "systemd_notify_failed"
    assert warning["log_level"] == "warning"
    assert "No such file" in warning["error"]
