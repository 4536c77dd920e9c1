"""``auditcorr run``: the daemon as a subprocess, fed files and signals while it runs."""

from __future__ import annotations

import gzip
import shutil
import signal
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import orjson
import pytest
from itsupport import (
    EXAMPLES,
    REPO,
    Daemon,
    Workspace,
    auditcorr,
    checkpoints,
    count_events,
    generate,
    log_name,
    put_file,
    read_to_end,
    records_file,
    stored_ids,
    wait_for,
    write_tree,
)

from daemon import pipeline

pytestmark = pytest.mark.integration

ONE_TRAIL: dict[str, Any] = {"accounts": ["111111111111"], "regions": ["us-east-1"]}
DEMO = EXAMPLES / "demo"
StartDaemon = Callable[[Workspace, str], Daemon]


def _start_with_tree(
    workspace: Workspace, daemons: StartDaemon, ctgen: ModuleType, n: int = 200, seed: int = 31
) -> tuple[Daemon, set[str]]:
    records = generate(ctgen, n, seed=seed, span=timedelta(minutes=30), **ONE_TRAIL)
    tree = write_tree(ctgen, workspace.data, records)
    workspace.write_config()
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    wait_for(
        f"the {n} events already in the tree",
        lambda: workspace.count() == n,
        timeout=30,
        context=daemon.tail,
    )
    return daemon, tree.ids


def _drop_file(workspace: Workspace, ctgen: ModuleType, tag: str, seed: int) -> set[str]:
    """A new delivery into a running daemon's tree; its event ids."""
    records = generate(ctgen, 50, seed=seed, start=datetime(2026, 11, 20, 2, tzinfo=UTC))
    put_file(workspace.data, log_name(tag), records_file(records))
    return {r["eventID"] for r in records}


def _wait_in_timeline(
    workspace: Workspace, daemon: Daemon, ids: set[str], *args: str, timeout: float = 30
) -> None:
    def visible() -> bool:
        return ids <= set(workspace.timeline_ids(*args))

    wait_for(
        f"{len(ids)} new events in the timeline",
        visible,
        timeout=timeout,
        interval=0.3,
        context=daemon.tail,
    )


def test_run_picks_up_files_dropped_into_the_tree(
    workspace: Workspace, daemons: StartDaemon, ctgen: ModuleType
) -> None:
    """A file delivered while the daemon runs shows up in the timeline, each event once."""
    daemon, initial = _start_with_tree(workspace, daemons, ctgen)
    added = _drop_file(workspace, ctgen, "DroppedWhileRun1", seed=32)

    _wait_in_timeline(workspace, daemon, added)
    assert daemon.stop() == 0, daemon.tail()
    assert stored_ids(workspace.db) == Counter(initial | added)
    assert count_events(workspace.db, "quarantine") == 0


@pytest.mark.slow
def test_sigterm_exits_promptly_and_commits_what_was_read(
    workspace: Workspace, daemons: StartDaemon, ctgen: ModuleType
) -> None:
    """SIGTERM mid-ingest: exit 0 within seconds; a restart finds nothing read but uncommitted."""
    # Many more small files than the pipeline holds between reading and committing
    # (and than the first transaction gathers), so that SIGTERM finds files not
    # yet read however its queues are sized.
    files = 4 * (pipeline.RAW_QUEUE + pipeline.IN_FLIGHT) + 600
    records = generate(ctgen, files * 30, seed=33, span=timedelta(minutes=30), **ONE_TRAIL)
    tree = write_tree(ctgen, workspace.data, records, per_file=30)
    assert len(tree.paths) >= files
    workspace.write_config()
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    wait_for(
        "the first commit",
        lambda: workspace.count() > 0,
        timeout=30,
        interval=0.02,
        context=daemon.tail,
    )

    asked = time.monotonic()
    assert daemon.stop(timeout=20) == 0, daemon.tail()
    took = time.monotonic() - asked
    assert took < 5, f"{took:.1f}s from SIGTERM to exit\n{daemon.tail()}"
    at_stop = workspace.count()
    assert at_stop < len(records), "everything was stored before SIGTERM: nothing was tested"
    stopped = daemon.events("daemon_stopped")
    assert stopped, daemon.tail()
    assert stopped[-1]["stored"] == at_stop, daemon.tail()

    again = workspace.backfill()
    assert again.returncode == 0, str(again)
    assert again.summary["duplicates"] == 0, f"events committed without their checkpoint\n{again}"
    assert again.summary["stored"] == len(records) - at_stop, str(again)
    assert stored_ids(workspace.db) == Counter(tree.ids)


def test_sighup_with_a_broken_config_keeps_running(
    workspace: Workspace, daemons: StartDaemon, ctgen: ModuleType
) -> None:
    """SIGHUP with a broken config logs config_reload_failed and the daemon keeps ingesting."""
    daemon, initial = _start_with_tree(workspace, daemons, ctgen, seed=34)
    good_config = workspace.config.read_text()
    workspace.reader = workspace.root / "reader.toml"
    workspace.reader.write_text(good_config)
    workspace.config.write_text(good_config.replace("[store]", "[store]\nretention_dayz = 3"))

    daemon.signal(signal.SIGHUP)
    failed = wait_for(
        "config_reload_failed",
        lambda: daemon.events("config_reload_failed"),
        timeout=10,
        context=daemon.tail,
    )
    assert "retention_dayz" in failed[0]["error"]
    assert daemon.alive()
    added = _drop_file(workspace, ctgen, "AfterBadReload01", seed=35)
    _wait_in_timeline(workspace, daemon, added)
    assert daemon.stop() == 0, daemon.tail()
    assert stored_ids(workspace.db) == Counter(initial | added)


def test_sighup_with_a_new_source_starts_it(
    workspace: Workspace, daemons: StartDaemon, ctgen: ModuleType
) -> None:
    """SIGHUP with a second source added starts it; the first one is not restarted or re-read."""
    daemon, initial = _start_with_tree(workspace, daemons, ctgen, seed=36)
    second = workspace.root / "data2"
    records = generate(ctgen, 150, seed=37, span=timedelta(minutes=20), **ONE_TRAIL)
    more = write_tree(ctgen, second, records)
    workspace.write_config({"ct_org": {"path": workspace.data}, "ct_lab": {"path": second}})

    daemon.signal(signal.SIGHUP)
    wait_for(
        "config_reloaded", lambda: daemon.events("config_reloaded"), timeout=10, context=daemon.tail
    )
    _wait_in_timeline(workspace, daemon, more.ids, "--source", "ct_lab")
    assert daemon.stop() == 0, daemon.tail()

    started = Counter(e.get("component_id") for e in daemon.events("source_started"))
    assert started == {"ct_org": 1, "ct_lab": 1}, daemon.tail()
    assert daemon.events("daemon_stopped")[-1]["duplicates"] == 0, daemon.tail()
    assert stored_ids(workspace.db) == Counter(initial | more.ids)


# --------------------------------------------------------------------------- bundled config


def _require_demo() -> None:
    if not DEMO.is_dir():
        pytest.skip(f"{DEMO} does not exist yet (being written); the bundled config reads it")


def _demo_id_uses() -> Counter[str]:
    """How many well-formed demo records carry each event id."""
    ids: Counter[str] = Counter()
    for path in sorted(DEMO.rglob("*.json*")):
        if not path.name.endswith((".json", ".json.gz")) or "CloudTrail-Digest" in str(path):
            continue
        data = path.read_bytes()
        try:
            document = orjson.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
        except (OSError, orjson.JSONDecodeError, EOFError):
            continue
        records = document.get("Records", []) if isinstance(document, dict) else []
        ids.update(
            r["eventID"]
            for r in records
            if isinstance(r, dict)
            and isinstance(r.get("eventID"), str)
            and isinstance(r.get("eventTime"), str)
        )
    return ids


def _demo_read_to_end(workspace: Workspace, sources: dict[str, dict[str, Any]]) -> bool:
    """True once each demo source committed the end of its input: a tailed log's last
    byte, a checkpoint for every trail file and every change file.  Checkpoints commit
    with their events, so an event read twice would be stored by then."""
    saved = checkpoints(workspace.db)
    for name, source in sources.items():
        path = (workspace.root / source["path"]).resolve()
        if source["type"] == "cloudtrail_files":
            files = {str(p.relative_to(path)) for p in path.rglob("*.json.gz")}
        elif source["type"] == "changes_files":
            files = {p.name for p in path.iterdir()}
        elif not read_to_end(workspace.db, name, path):
            return False
        else:
            continue
        if set(saved.get(name, {})) != files:
            return False
    return True


def test_bundled_config_passes_check_config() -> None:
    """The config.toml shipped at the repository root validates as it is."""
    _require_demo()
    result = auditcorr("check-config", "--config", str(REPO / "config.toml"), cwd=REPO)
    assert result.returncode == 0, str(result)
    assert "valid" in result.stdout.splitlines()[0], str(result)


def test_run_of_a_copy_of_the_bundled_config_ingests_the_demo(
    workspace: Workspace, daemons: StartDaemon
) -> None:
    """auditcorr run on a copy of config.toml (and examples/ beside it) stores the demo
    trail, the hosts' logs and the demo change records."""
    _require_demo()
    shutil.copy(REPO / "config.toml", workspace.config)
    shutil.copytree(DEMO, workspace.root / "examples" / "demo")
    shutil.copytree(EXAMPLES / "changes", workspace.root / "examples" / "changes")
    text = workspace.config.read_text()
    settings = tomllib.loads(text)
    assert settings["daemon"]["state_dir"] == "state", "the bundled state_dir moved"
    text = text.replace('state_dir = "state"', f'state_dir = "{workspace.state}"', 1).replace(
        'listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:0"', 1
    )
    workspace.config.write_text(text)
    assert tomllib.loads(text)["daemon"]["state_dir"] == str(workspace.state)
    uses = _demo_id_uses()
    assert uses, f"no CloudTrail records found in {DEMO}"
    records = sum(uses.values())
    # Four change record versions, three of them approved with a window each.
    changes = 4 + 3 * 2
    # The hosts' logs: a line is an event, but for auditd (one record per event here).
    host_events = sum(
        len(path.read_bytes().splitlines())
        for path in (DEMO / "hosts").rglob("*")
        if path.is_file()
    )

    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    wait_for(
        f"the {records} demo events, {host_events} host events and {changes} change events",
        lambda: count_events(workspace.db) >= records + host_events + changes,
        timeout=60,
        interval=0.3,
        context=daemon.tail,
    )
    wait_for(
        "every demo source's checkpoint at the end of its input",
        lambda: _demo_read_to_end(workspace, settings["sources"]),
        timeout=30,
        context=daemon.tail,
    )
    assert daemon.stop() == 0, daemon.tail()
    stored = stored_ids(workspace.db)
    assert sum(n for i, n in stored.items() if i.startswith("change:")) == changes
    assert Counter({i: n for i, n in stored.items() if i in uses}) == uses
    assert sum(stored.values()) == records + host_events + changes
    assert count_events(workspace.db, "quarantine") == 0
    reused = {i: n for i, n in uses.items() if n > 1}
    assert not reused, f"demo data: distinct records share an eventID: {reused}"
