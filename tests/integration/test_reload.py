"""SIGHUP and SIGTERM while files keep arriving: only changed sources restart, nothing lost
or doubled, and a stop drains within the unit's TimeoutStopSec."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from itsupport import (
    ONE_TRAIL,
    REPO,
    Daemon,
    Workspace,
    count_events,
    generate,
    log_name,
    put_file,
    records_file,
    stored_ids,
    wait_for,
    write_tree,
)

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]


def _timeout_stop_secs() -> float:
    unit = (REPO / "deploy" / "systemd" / "auditcorr.service").read_text()
    found = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    assert found, "the unit sets TimeoutStopSec"
    return float(found[1])


class Deliveries(threading.Thread):
    """Drops a file into each tree every ``every`` seconds, as aws s3 sync would."""

    def __init__(self, ctgen: ModuleType, trees: dict[str, Path], files: int, every: float):
        super().__init__(daemon=True)
        self.ctgen = ctgen
        self.trees = trees
        self.files = files
        self.every = every
        self.ids: dict[str, set[str]] = {name: set() for name in trees}

    def run(self) -> None:
        for index in range(self.files):
            for offset, (name, root) in enumerate(self.trees.items()):
                seed = 1000 + index * 10 + offset
                start = datetime(2026, 11, 20, 3, tzinfo=UTC) + timedelta(minutes=index)
                records = generate(self.ctgen, 40, seed=seed, start=start, **ONE_TRAIL)
                put_file(root, log_name(f"{name}{index:04d}"), records_file(records))
                self.ids[name] |= {r["eventID"] for r in records}
            time.sleep(self.every)


def _two_sources(workspace: Workspace, ctgen: ModuleType) -> tuple[dict[str, Path], set[str]]:
    trees = {"ct_a": workspace.root / "a", "ct_b": workspace.root / "b"}
    ids: set[str] = set()
    for seed, root in enumerate(trees.values(), start=51):
        records = generate(ctgen, 150, seed=seed, span=timedelta(minutes=20), **ONE_TRAIL)
        ids |= write_tree(ctgen, root, records).ids
    return trees, ids


def test_sighup_restarts_only_the_changed_source(
    workspace: Workspace, daemons: StartDaemon, ctgen: ModuleType
) -> None:
    """Files keep arriving in both trees across the reload: ct_b restarts, ct_a runs on,
    and every event is stored exactly once."""
    trees, initial = _two_sources(workspace, ctgen)
    workspace.write_config({name: {"path": root} for name, root in trees.items()})
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    wait_for("the initial events", lambda: workspace.count() == len(initial), timeout=30)

    deliveries = Deliveries(ctgen, trees, files=12, every=0.1)
    deliveries.start()
    time.sleep(0.4)
    workspace.write_config(
        {"ct_a": {"path": trees["ct_a"]}, "ct_b": {"path": trees["ct_b"], "max_file_bytes": 10**8}}
    )
    daemon.signal(signal.SIGHUP)
    wait_for("config_reloaded", lambda: daemon.events("config_reloaded"), timeout=10)
    deliveries.join(30)
    expected = initial | deliveries.ids["ct_a"] | deliveries.ids["ct_b"]
    wait_for(
        "every delivered event",
        lambda: workspace.count() >= len(expected),
        timeout=60,
        interval=0.2,
        context=daemon.tail,
    )
    assert daemon.stop() == 0, daemon.tail()

    stopped = [e.get("source") for e in daemon.events("source_stopped")]
    assert stopped == ["ct_b"], daemon.tail()
    started = Counter(e.get("component_id") for e in daemon.events("source_started"))
    assert started == {"ct_a": 1, "ct_b": 2}, daemon.tail()
    assert stored_ids(workspace.db) == Counter(expected)
    assert count_events(workspace.db, "quarantine") == 0
    # Each event is attributed to the source that read it, across the restart.
    assert set(workspace.timeline_ids("--source", "ct_a")) >= deliveries.ids["ct_a"]
    assert set(workspace.timeline_ids("--source", "ct_b")) >= deliveries.ids["ct_b"]


@pytest.mark.slow
def test_sigterm_right_after_sighup_drains_within_timeout_stop_sec(
    workspace: Workspace, daemons: StartDaemon, ctgen: ModuleType
) -> None:
    """A stop in the middle of a reload and a backlog exits 0 well within TimeoutStopSec;
    what it did not commit is read by the next run, nothing twice."""
    records = generate(ctgen, 12_000, seed=61, span=timedelta(hours=2), **ONE_TRAIL)
    tree = write_tree(ctgen, workspace.data, records, per_file=30)
    workspace.write_config()
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    wait_for("the first commit", lambda: workspace.count() > 0, timeout=30, interval=0.02)
    workspace.write_config(poll_interval_secs=0.3)
    daemon.signal(signal.SIGHUP)
    asked = time.monotonic()
    daemon.signal(signal.SIGTERM)
    limit = _timeout_stop_secs()
    assert daemon.proc is not None
    assert daemon.proc.wait(limit) == 0, daemon.tail()
    took = time.monotonic() - asked
    assert took < limit / 4, f"{took:.1f}s from SIGTERM to exit\n{daemon.tail()}"
    at_stop = workspace.count()
    assert at_stop < len(records), "everything was stored before SIGTERM: nothing was tested"

    again = workspace.backfill()
    assert again.returncode == 0, str(again)
    assert again.summary["stored"] == len(records) - at_stop, str(again)
    assert stored_ids(workspace.db) == Counter(tree.ids)
