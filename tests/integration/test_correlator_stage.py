"""Correlation as its own durable stage, seen as an operator sees it: windows that span
restarts and crashes on a busy store fire once, and SIGTERM is honoured at once."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from itsupport import Daemon, Workspace, wait_for
from syslogsupport import write_config

sys.path.insert(0, str(Path(__file__).parents[1] / "daemon" / "store"))

from storesupport import crafted

from daemon.logtypes import normalize_record
from daemon.model import AuditEvent
from daemon.process import init_worker
from daemon.store.sqlite import SqliteStore
from daemon.store.units import Batch

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]
ADDRESS = "198.51.100.77"


def failure(n: int, at: datetime | None = None) -> bytes:
    """An sshd failure from ADDRESS, stamped now (RFC 3164, local time is UTC here)."""
    moment = at or datetime.now(UTC)
    stamp = moment.strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
    return (
        f"{stamp} bastion sshd[{4000 + n}]: Failed password for u{n} from {ADDRESS}"
        f" port {40000 + n} ssh2\n"
    ).encode()


def append(log: Path, *lines: bytes) -> None:
    with log.open("ab") as handle:
        handle.writelines(lines)


def configure(workspace: Workspace, log: Path) -> None:
    source = {"type": "syslog_file", "path": log, "start": "beginning", "poll_interval_secs": 0.1}
    write_config(workspace, {"auth": source})


def fill(db: Path, events: int) -> None:
    """``events`` events spread over the last day, written as the writer writes them."""
    store = SqliteStore(db, retention_days=0, normalize=normalize_record)
    init_worker(store.dictionaries())
    now = datetime.now(UTC)
    try:
        for start in range(0, events, 10_000):
            batch: Batch = crafted(
                "filler",
                [
                    AuditEvent(
                        id=f"fill-{n}",
                        timestamp=now - timedelta(seconds=86_000 * n / events),
                        dataset="system.syslog",
                        action="message",
                        message=f"filler {n}",
                    )
                    for n in range(start, min(start + 10_000, events))
                ],
            )
            store.write([batch])
    finally:
        store.close()


def brute_force(db: Path) -> list[tuple[str, int]]:
    """(alert id, count) of every stored ssh_brute_force alert."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as handle:
        rows = handle.execute(
            "SELECT id, json_extract(doc, '$.count') FROM alerts WHERE rule_id = 'ssh_brute_force'"
        ).fetchall()
    return [(str(alert), int(count)) for alert, count in rows]


def correlated(db: Path, failures: int) -> bool:
    """``failures`` failures stored and every feed row correlated."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as handle:
        stored = handle.execute("SELECT count(*) FROM events WHERE source = 'auth'").fetchone()[0]
        fed = handle.execute("SELECT coalesce(max(seq), 0) FROM ingest_feed").fetchone()[0]
        place = handle.execute("SELECT coalesce(max(position), 0) FROM feed_position").fetchone()
    return bool(stored >= failures and fed and place[0] >= fed)


@pytest.mark.slow
def test_a_window_spanning_a_restart_on_a_busy_store_fires(
    workspace: Workspace, daemons: StartDaemon
) -> None:
    """250,000 events of the last day in the store; three failures, a restart, two more:
    ssh_brute_force (five in ten minutes) fires with all five, and the daemon stops fast."""
    log = workspace.data / "auth.log"
    log.touch()
    configure(workspace, log)
    workspace.state.mkdir(parents=True, exist_ok=True)
    fill(workspace.db, 250_000)
    daemon = daemons(workspace, "before")
    daemon.wait_started()
    append(log, *(failure(n) for n in range(3)))
    wait_for("three failures correlated", lambda: correlated(workspace.db, 3), timeout=60)
    asked = time.monotonic()
    assert daemon.stop(timeout=10) == 0
    assert time.monotonic() - asked < 10
    assert brute_force(workspace.db) == []

    again = daemons(workspace, "after")
    again.wait_started()
    append(log, *(failure(n) for n in range(3, 5)))
    wait_for("the brute force alert", lambda: brute_force(workspace.db), timeout=60)
    ((_, count),) = brute_force(workspace.db)
    assert count == 5
    (start,) = [entry for entry in again.logs() if entry.get("event") == "correlator_started"]
    assert start["position"] > 0, "the second run continued from the committed place"


@pytest.mark.slow
def test_kill_9_in_the_middle_of_a_window_raises_every_alert_once(
    workspace: Workspace, daemons: StartDaemon
) -> None:
    """Failures arrive while the daemon is killed with SIGKILL again and again: in the end
    one alert counts every failure exactly once (none lost, none counted twice)."""
    log = workspace.data / "auth.log"
    log.touch()
    configure(workspace, log)
    total = 0
    for round_ in range(4):
        daemon = daemons(workspace, f"run{round_}")
        daemon.wait_started()
        append(log, *(failure(n) for n in range(total, total + 3)))
        total += 3
        if round_ % 2:
            wait_for("failures correlated", lambda n=total: correlated(workspace.db, n), timeout=60)
        daemon.signal(signal.SIGKILL)
        daemon.kill_group()
    last = daemons(workspace, "last")
    last.wait_started()
    wait_for("all failures correlated", lambda: correlated(workspace.db, total), timeout=60)
    ((_, count),) = brute_force(workspace.db)
    assert count == total
    assert last.stop() == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("moment", "to"), [("start", "daemon"), ("burst", "daemon"), ("burst", "service")]
)
def test_sigterm_is_honoured_within_ten_seconds(
    workspace: Workspace, daemons: StartDaemon, moment: str, to: str
) -> None:
    """During start and in the middle of a burst of 300,000 lines, SIGTERM ends the daemon
    within 10 s with exit 0; the next run stores the rest, every line once.  Sent to the
    whole service as systemd does, it also reaches the workers, which go on decoding
    what the daemon drains instead of dying under it."""
    log = workspace.data / "auth.log"
    start = datetime.now(UTC) - timedelta(hours=1)
    append(log, *(failure(n, start + timedelta(milliseconds=10 * n)) for n in range(300_000)))
    configure(workspace, log)
    daemon = daemons(workspace, "first")
    if moment == "start":
        wait_for("the start", lambda: daemon.events("daemon_started"), timeout=30)
    else:
        wait_for("a burst being stored", lambda: workspace.count() > 20_000, timeout=120)
    asked = time.monotonic()
    assert daemon.stop(timeout=10, service=to == "service") == 0
    assert time.monotonic() - asked < 10
    assert not daemon.events("worker_died")
    stored = workspace.count()
    assert stored < 300_000, "the burst was over before SIGTERM: the test proves nothing"
    second = daemons(workspace, "second")
    second.wait_started()
    wait_for("every line", lambda: workspace.count() >= 300_000, timeout=300)
    assert workspace.count() == 300_000
    assert second.stop() == 0
