"""``kill -9`` of a daemon mid-ingest loses nothing and doubles nothing (DESIGN invariant 1)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from itsupport import (
    ALERT_SOURCE,
    Daemon,
    Workspace,
    alert_entry_ids,
    alerts_as_they_stand,
    count_events,
    generate,
    is_alert_entry,
    session_members,
    stored_documents,
    wait_for,
    write_tree,
)

from daemon.store.keys import event_hash

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 50_000
StartDaemon = Callable[[Workspace, str], Daemon]


@dataclass(frozen=True)
class Tree:
    root: Path
    ids: list[str]


@pytest.fixture(scope="module")
def fifty_thousand(tmp_path_factory: pytest.TempPathFactory, ctgen: ModuleType) -> Tree:
    """50,000 events in about 50 files of 1000 (all in one five-minute interval per trail)."""
    root = tmp_path_factory.mktemp("crash-source")
    records = generate(ctgen, EVENTS, seed=41, span=timedelta(minutes=5))
    paths = write_tree(ctgen, root, records, per_file=1000).paths
    assert 45 <= len(paths) <= 60, len(paths)
    ids = [r["eventID"] for r in records]
    assert len(set(ids)) == EVENTS
    return Tree(root, ids)


def _copy_tree(workspace: Workspace, tree: Tree) -> None:
    shutil.copytree(tree.root, workspace.data, dirs_exist_ok=True)
    workspace.write_config()


def _wait_all_stored(workspace: Workspace, daemon: Daemon) -> None:
    """Until the store holds every event and has not changed for a second."""
    stable: list[int] = []

    def idle() -> bool:
        stable.append(workspace.count())
        return stable[-10:] == [EVENTS] * 10

    wait_for(f"all {EVENTS} events", idle, timeout=120, context=daemon.tail)


def _assert_each_event_once(workspace: Workspace, tree: Tree) -> None:
    """Every event read is stored once; so is each alert entry, with one for each alert's count."""
    rows, eids = _eids(workspace.db)
    assert rows == EVENTS
    assert eids == {event_hash(i) for i in tree.ids}, "events lost or doubled"
    entries = alert_entry_ids(workspace.db)
    assert max(entries.values(), default=1) == 1, "an alert entry doubled"
    assert set(alerts_as_they_stand(workspace.db)) <= set(entries), "an alert missing its entry"


def _eids(db: Path) -> tuple[int, set[int]]:
    """Rows and event hashes of the events read (the alerts' entries left out)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT eid FROM events WHERE source != ?", (ALERT_SOURCE,)).fetchall()
    return len(rows), {eid for (eid,) in rows}


def _wait_gone(daemon: Daemon, timeout: float) -> list[tuple[int, str]]:
    """The processes of the daemon's session still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := session_members(daemon.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize(
    ("moment", "kill_at"), [("early", 1), ("mid_way", EVENTS * 2 // 5)], ids=["early", "mid_way"]
)
def test_kill_9_then_restart_stores_every_event_exactly_once(
    moment: str,
    kill_at: int,
    workspace: Workspace,
    daemons: StartDaemon,
    fifty_thousand: Tree,
) -> None:
    """After kill -9 mid-ingest and a restart, the store holds all 50,000 events exactly once."""
    _copy_tree(workspace, fifty_thousand)

    first = daemons(workspace, "first")
    wait_for(
        f"{kill_at} events stored",
        lambda: workspace.count() >= kill_at or not first.alive(),
        timeout=90,
        interval=0.02,
        context=first.tail,
    )
    assert first.alive(), f"the daemon exited on its own\n{first.tail()}"
    os.kill(first.pid, signal.SIGKILL)
    assert first.proc is not None
    assert first.proc.wait(10) == -signal.SIGKILL
    at_kill = workspace.count()
    assert 0 < at_kill < EVENTS, f"killed {moment} but {at_kill} events were stored"

    second = daemons(workspace, "second")
    second.wait_started()
    _wait_all_stored(workspace, second)
    assert second.stop() == 0, second.tail()

    _assert_each_event_once(workspace, fifty_thousand)
    docs = stored_documents(workspace.db, limit=2000)
    assert {d["event"]["id"] for d in docs if not is_alert_entry(d)} <= set(fifty_thousand.ids)
    assert len({d["event"]["id"] for d in docs}) == len(docs) == 2000
    assert count_events(workspace.db, "quarantine") == 0
    assert not _wait_gone(second, 5), "processes left after a clean stop"
    first.kill_group()  # its orphans, if any: test_pool_processes_die_with_a_killed_daemon


def test_pool_processes_die_with_a_killed_daemon(
    workspace: Workspace, daemons: StartDaemon, ctgen: ModuleType
) -> None:
    """When the daemon is killed with SIGKILL, its worker processes do not outlive it."""
    write_tree(ctgen, workspace.data, generate(ctgen, 20, seed=42))
    workspace.write_config()
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    wait_for("the first commit", lambda: workspace.count() > 0, timeout=30, context=daemon.tail)
    helpers = [p for p in session_members(daemon.pid) if p[0] != daemon.pid]
    assert helpers, "no worker processes found"

    os.kill(daemon.pid, signal.SIGKILL)
    left = _wait_gone(daemon, 5)
    assert not left, "still running 5 s after the daemon was killed:\n" + "\n".join(
        f"  {pid}: {cmd[:120]}" for pid, cmd in left
    )


def test_sigterm_with_a_backlog_of_full_files_exits_within_seconds(
    workspace: Workspace, daemons: StartDaemon, fifty_thousand: Tree
) -> None:
    """SIGTERM with a backlog of 1000-event files exits 0 within 5 s; the rest is read later."""
    _copy_tree(workspace, fifty_thousand)
    daemon = daemons(workspace, "daemon")
    wait_for(
        "the first commit",
        lambda: workspace.count() > 0 or not daemon.alive(),
        timeout=60,
        interval=0.02,
        context=daemon.tail,
    )
    at_signal = workspace.count()
    asked = time.monotonic()
    assert daemon.stop(timeout=120) == 0, daemon.tail()
    took = time.monotonic() - asked
    at_stop = workspace.count()

    again = workspace.backfill()
    assert again.returncode == 0, str(again)
    assert again.summary["duplicates"] == 0, str(again)
    assert again.summary["stored"] == EVENTS - at_stop, str(again)
    assert _eids(workspace.db)[0] == EVENTS
    story = (
        f"SIGTERM with {at_signal} of {EVENTS} events stored: the exit took {took:.1f}s and"
        f" committed {at_stop - at_signal} more events, read ahead before the signal"
    )
    assert took < 5, story
    assert at_stop < EVENTS, story


def _workers(daemon: Daemon) -> list[int]:
    """Decoding worker processes: children of the daemon's forkserver."""
    members = session_members(daemon.pid)
    servers = {pid for pid, cmd in members if "forkserver import main" in cmd}
    found = []
    for pid, _ in members:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        except OSError:
            continue
        if parent in servers:
            found.append(pid)
    return found


def test_a_killed_worker_is_replaced_and_its_files_are_still_stored_once(
    workspace: Workspace, daemons: StartDaemon, fifty_thousand: Tree
) -> None:
    """kill -9 of a decoding worker mid-ingest: the pool is replaced, every event stored once."""
    _copy_tree(workspace, fifty_thousand)
    daemon = daemons(workspace, "daemon")
    wait_for(
        "the first events and a worker",
        lambda: workspace.count() > 0 and bool(_workers(daemon)),
        timeout=90,
        interval=0.02,
        context=daemon.tail,
    )
    at_kill = workspace.count()
    os.kill(_workers(daemon)[0], signal.SIGKILL)
    assert at_kill < EVENTS, "everything was stored before the worker was killed"
    _wait_all_stored(workspace, daemon)
    assert daemon.events("worker_died"), daemon.tail()
    assert daemon.stop() == 0, daemon.tail()
    _assert_each_event_once(workspace, fifty_thousand)
    assert count_events(workspace.db, "quarantine") == 0
