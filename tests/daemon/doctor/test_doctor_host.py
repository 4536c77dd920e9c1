"""Each host check of the doctor passes on a good host and fails, with a hint, on a bad one."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.doctor import host
from daemon.logtypes import normalize_record
from daemon.store import schema
from daemon.store.sqlite import SqliteStore

AS_ROOT = os.geteuid() == 0


def test_state_dir_writable(tmp_path: Path) -> None:
    """An existing writable folder passes and keeps no probe file behind."""
    check = host.state_dir(tmp_path)
    assert check.ok, check
    assert list(tmp_path.iterdir()) == []


def test_state_dir_made_at_start_when_its_parent_is_writable(tmp_path: Path) -> None:
    """A missing folder that can be made passes and says so."""
    check = host.state_dir(tmp_path / "a" / "b")
    assert check.ok
    assert "made at first start" in check.detail


def test_state_dir_that_is_a_file_fails(tmp_path: Path) -> None:
    """A file where the folder should be fails with a hint."""
    target = tmp_path / "state"
    target.write_text("")
    check = host.state_dir(target)
    assert not check.ok
    assert "not a directory" in check.detail
    assert check.hint
    assert "install -d" in check.hint


@pytest.mark.skipif(AS_ROOT, reason="root may write anywhere")
def test_state_dir_read_only_fails(tmp_path: Path) -> None:
    """A folder without write access fails."""
    tmp_path.chmod(0o500)
    try:
        check = host.state_dir(tmp_path)
    finally:
        tmp_path.chmod(0o700)
    assert not check.ok


def test_state_dir_on_a_read_only_file_system_fails() -> None:
    """/proc takes no new files, even from root."""
    check = host.state_dir(Path("/proc/self"))
    assert not check.ok, check


def test_store_missing_is_fine(tmp_path: Path) -> None:
    """No store yet: made at first start."""
    check, facts = host.store(tmp_path / "timeline.db")
    assert check.ok
    assert facts is None


def test_store_at_current_schema_passes(tmp_path: Path) -> None:
    """A store the daemon made passes and reports its schema."""
    path = tmp_path / "timeline.db"
    SqliteStore(path, retention_days=0, normalize=normalize_record).close()
    check, facts = host.store(path)
    assert check.ok, check
    assert facts is not None
    assert facts.version == len(schema.MIGRATIONS)
    assert f"schema {facts.version}" in check.detail


def test_store_held_open_by_the_daemon_is_read_through_its_wal(tmp_path: Path) -> None:
    """A store a running daemon holds open, its schema and checkpoints still only in the
    -wal file, reports the schema and newest write the daemon sees."""
    path = tmp_path / "timeline.db"
    daemon = SqliteStore(path, retention_days=0, normalize=normalize_record)
    try:
        with contextlib.closing(sqlite3.connect(path)) as writer:
            writer.execute("PRAGMA wal_autocheckpoint = 0")
            writer.execute(
                "INSERT INTO checkpoints VALUES ('ct', 'k', x'7b7d', ?)",
                (int(NOW.timestamp() * 1e6),),
            )
            writer.commit()
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)) as c:
            assert schema.version_of(c) == 0, "the test needs the schema still in the -wal"
        check, facts = host.store(path)
    finally:
        daemon.close()
    assert check.ok, check
    assert facts == host.StoreFacts(len(schema.MIGRATIONS), NOW)
    assert "upgraded" not in check.detail


def test_store_of_a_stopped_daemon_is_read_without_making_files(tmp_path: Path) -> None:
    """Reading a closed store makes no -wal or -shm file beside it."""
    path = tmp_path / "timeline.db"
    SqliteStore(path, retention_days=0, normalize=normalize_record).close()
    before = sorted(tmp_path.iterdir())
    check, _ = host.store(path)
    assert check.ok, check
    assert sorted(tmp_path.iterdir()) == before


def test_store_of_a_newer_auditcorr_fails(tmp_path: Path) -> None:
    """A store from a newer release is refused, as the daemon would refuse it."""
    path = tmp_path / "timeline.db"
    SqliteStore(path, retention_days=0, normalize=normalize_record).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE schema_version SET version = version + 1")
        db.commit()
    check, _ = host.store(path)
    assert not check.ok
    assert "newer than this auditcorr" in check.detail


def test_store_that_is_not_sqlite_fails(tmp_path: Path) -> None:
    """Garbage in place of the store fails with a hint."""
    path = tmp_path / "timeline.db"
    path.write_bytes(b"not a database" * 100)
    check, _ = host.store(path)
    assert not check.ok
    assert "not a readable store" in check.detail


@pytest.mark.skipif(AS_ROOT, reason="root may write anywhere")
def test_store_not_writable_fails(tmp_path: Path) -> None:
    """A store the user cannot write fails with a chown hint."""
    path = tmp_path / "timeline.db"
    SqliteStore(path, retention_days=0, normalize=normalize_record).close()
    path.chmod(0o400)
    check, _ = host.store(path)
    assert not check.ok
    assert check.hint
    assert "chown" in check.hint


def test_disk_space(tmp_path: Path) -> None:
    """Passes with the real free space, fails when asked for more than the disk has."""
    assert host.disk_space(tmp_path, min_free=1, min_ratio=0).ok
    total = os.statvfs(tmp_path).f_blocks * os.statvfs(tmp_path).f_frsize
    check = host.disk_space(tmp_path / "not" / "yet", min_free=total + 1)
    assert not check.ok
    assert "GiB free" in check.detail
    assert check.hint
    assert "retention_days" in check.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("udp:0.0.0.0:5514", host.Listen("udp", "0.0.0.0", 5514)),
        ("tcp:[::1]:6514", host.Listen("tcp", "::1", 6514)),
        ("127.0.0.1:8080", host.Listen("tcp", "127.0.0.1", 8080)),
        ("tls:host.example:6514", host.Listen("tcp", "host.example", 6514)),
    ],
)
def test_listen_forms(text: str, expected: host.Listen) -> None:
    """The listen forms of the config reference parse to protocol, host and port."""
    assert host.Listen.parse(text) == expected


def test_port_zero_passes_and_a_port_past_65535_fails() -> None:
    """Port 0 (any free port, valid in the config) passes; 99999 fails naming the range."""
    assert host.port_free("api", "127.0.0.1:0").ok
    check = host.port_free("sources.syslog", "udp:127.0.0.1:99999")
    assert not check.ok
    assert check.detail == "the port must be 1-65535, or 0 for any free port"


def test_port_free_and_in_use() -> None:
    """A free TCP and UDP port pass; the same ports fail while a socket holds them."""
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        udp.bind(("127.0.0.1", 0))
        tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        tcp.listen()
        busy_tcp = host.port_free("api", f"127.0.0.1:{tcp_port}")
        busy_udp = host.port_free("sources.syslog", f"udp:127.0.0.1:{udp_port}")
        assert tcp_port in host.listening_ports("tcp")
        assert udp_port in host.listening_ports("udp")
    assert not busy_tcp.ok
    assert "in use" in busy_tcp.detail
    assert busy_tcp.hint
    assert f"sport = :{tcp_port}" in busy_tcp.hint
    assert not busy_udp.ok
    assert host.port_free("api", f"127.0.0.1:{tcp_port}").ok
    assert host.port_free("sources.syslog", f"udp:127.0.0.1:{udp_port}").ok


def test_port_with_a_foreign_address_or_no_port_fails() -> None:
    """An address the host does not have, or a listen without a port, fails."""
    foreign = host.port_free("api", "192.0.2.1:8080")
    assert not foreign.ok
    assert "not an address of this host" in foreign.detail
    assert not host.port_free("api", "127.0.0.1").ok


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_clock_in_sync_passes() -> None:
    """A synchronized clock ahead of the store's newest write passes."""
    assert host.clock(NOW, NOW - timedelta(hours=1), synchronized=True).ok
    assert host.clock(NOW, None, synchronized=None).ok


def test_clock_behind_the_store_fails() -> None:
    """A clock earlier than the store's newest write went back: fails."""
    check = host.clock(NOW, NOW + timedelta(hours=2), synchronized=True)
    assert not check.ok
    assert "went back" in check.detail


def test_clock_not_synchronized_fails() -> None:
    """The kernel's unsynchronized flag fails the check with an NTP hint."""
    check = host.clock(NOW, None, synchronized=False)
    assert not check.ok
    assert check.hint
    assert "NTP" in check.hint


def test_kernel_sync_state_is_read() -> None:
    """adjtimex answers on Linux (True or False, not unknown)."""
    assert host.kernel_clock_synchronized() in {True, False}


def test_store_newest_write_feeds_the_clock_check(tmp_path: Path) -> None:
    """The newest checkpoint time in the store is what the clock is compared with."""
    path = tmp_path / "timeline.db"
    SqliteStore(path, retention_days=0, normalize=normalize_record).close()
    future = NOW + timedelta(days=365 * 20)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "INSERT INTO checkpoints VALUES ('ct', 'k', x'7b7d', ?)",
            (int(future.timestamp() * 1e6),),
        )
        db.commit()
    facts = host.read_store(path)
    assert facts.last_write == future
    assert not host.clock(datetime.now(UTC), facts.last_write, synchronized=True).ok
