"""What a newcomer sees of the bundled demo is true: the same alert ids on every fresh
backfill, no old alerts logged as new after a restart, change records at their own time,
and no ``unapproved_change`` flood when no change records are configured."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from itsupport import (
    EXAMPLES,
    REPO,
    Daemon,
    Workspace,
    auditcorr,
    backfilled_demo,
    parse_logs,
)

pytestmark = pytest.mark.integration

DEMO_DAY = "2026-11-20"


def stored_alerts(workspace: Workspace) -> list[dict[str, Any]]:
    """The alerts as ``auditcorr alerts --json`` lists them."""
    result = workspace.cli("alerts", "--json")
    assert result.returncode == 0, str(result)
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def alert_ids(workspace: Workspace) -> set[str]:
    return {alert["id"] for alert in stored_alerts(workspace)}


def test_two_fresh_backfills_of_the_demo_make_the_same_alert_ids(tmp_path: Path) -> None:
    """Alert ids are a function of the events, not of the order workers and sources
    delivered them in: two fresh stores of the same demo hold the same alerts."""
    demo, _ = backfilled_demo(tmp_path)
    first = stored_alerts(demo)
    assert len(first) >= 10
    shutil.rmtree(demo.state)
    result = demo.backfill()
    assert result.returncode == 0, str(result)
    assert sorted(a["id"] for a in stored_alerts(demo)) == sorted(a["id"] for a in first)
    assert {a["id"]: a["actors"] for a in stored_alerts(demo)} == {
        a["id"]: a["actors"] for a in first
    }


def test_the_timeline_opens_on_the_demo_day_with_change_records_at_their_time(
    tmp_path: Path,
) -> None:
    """A change record's entry sits at its last update, not at the time it was read, so
    the newest entries (and the page's histogram anchored on them) are the demo day's."""
    demo, _ = backfilled_demo(tmp_path)
    newest = demo.timeline("--limit", "5")
    assert [doc["@timestamp"][:10] for doc in newest] == [DEMO_DAY] * 5
    recorded = {
        doc["change"]["id"]: doc["@timestamp"]
        for doc in demo.timeline("--action", "change_recorded")
    }
    assert recorded == {
        "CHG0041207": "2026-11-19T16:20:00Z",
        "CHG0041211": "2026-11-19T09:40:00Z",
        "CHG0041214": "2026-11-19T17:05:00Z",
        "CHG0041190": "2026-11-20T08:30:00Z",
    }


def demo_without_changes(root: Path) -> Workspace:
    """The demo's config and data without its change records source."""
    workspace = Workspace(root)
    shutil.copytree(EXAMPLES / "demo", workspace.root / "examples" / "demo")
    text = (REPO / "config.toml").read_text()
    section = text.index("[sources.demo_changes]")
    text = text[:section] + text[text.index("[sources.demo_bastion01]") :]
    text = text.replace('state_dir = "state"', f'state_dir = "{workspace.state}"', 1).replace(
        'listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:0"', 1
    )
    workspace.config.write_text(text)
    return workspace


def test_without_a_change_source_unapproved_change_is_off_and_said_so(tmp_path: Path) -> None:
    """No change source: no unapproved_change alert for every sudo, one notice in the log,
    and doctor and rules list name the rule as off with how to turn it on."""
    workspace = demo_without_changes(tmp_path)
    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    notices = [e for e in parse_logs(result.stderr) if e.get("event") == "rule_disabled"]
    assert [(e["rule"], e["hint"]) for e in notices] == [
        (
            "unapproved_change",
            "add a source of change records (docs/changes.md#where-records-come-from) and restart",
        )
    ]
    rules = {alert["rule"]["id"] for alert in stored_alerts(workspace)}
    assert "unapproved_change" not in rules
    assert {"audit_daemon_tampering", "sudo_by_non_admin"} <= rules
    doctor = workspace.cli("doctor")
    assert "✓ rule unapproved_change: off: no source of change records is configured" in (
        doctor.stdout
    )
    listing = auditcorr("rules", "list", "--config", str(workspace.config), cwd=workspace.root)
    (row,) = [line for line in listing.stdout.splitlines() if line.startswith("unapproved_change")]
    assert "(off: no source of change records is configured" in row
    assert "docs/changes.md#where-records-come-from" in listing.stderr


def test_a_restart_logs_no_alert_that_already_existed(
    tmp_path: Path, daemons: Callable[[Workspace, str], Daemon]
) -> None:
    """After a restart the daemon rebuilds its windows from the timeline without logging
    the alerts it already had as ``alert`` lines: only new or updated ones are logged."""
    demo, _ = backfilled_demo(tmp_path)
    stored = alert_ids(demo)
    daemon = daemons(demo, "daemon")
    daemon.wait_started()  # the rebuild runs before the sources start
    assert daemon.stop() == 0
    logged = [entry for entry in daemon.logs() if entry.get("event") == "alert"]
    assert logged == [], daemon.tail()
    assert alert_ids(demo) == stored
