"""Rules end to end: ``backfill``/``run`` raise alerts, ``alerts`` and ``rules test`` show them."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from itsupport import (
    EXAMPLES,
    Daemon,
    Workspace,
    auditcorr,
    log_name,
    put_file,
    records_file,
    toml_value,
    wait_for,
)

pytestmark = pytest.mark.integration

DEMO_ALERTS = {
    ("cloudtrail_tampering", "mallory"),
    ("console_login_brute_force", "203.0.113.66"),
    ("console_login_without_mfa", "mallory"),
    ("hybrid_readonly_then_privilege_grant", "bob"),
    ("iam_privilege_escalation", "bob"),
    ("iam_privilege_escalation", "mallory"),
    ("root_account_usage", "222222222222"),
    # An empty folder of change records: the rule runs and every change is unapproved
    # (group: actor, user.name, host.name, cloud.account.id).
    ("unapproved_change", "", "alice@example.com", "", "111111111111"),
    ("unapproved_change", "", "bob", "", "111111111111"),
    ("unapproved_change", "", "mallory", "", "111111111111"),
    ("unapproved_change", "", "root", "", "222222222222"),
}


def alerts(workspace: Workspace, *args: str) -> list[dict[str, Any]]:
    result = workspace.cli("alerts", "--json", *args)
    assert result.returncode == 0, str(result)
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_backfill_of_the_demo_raises_the_story_once(workspace: Workspace) -> None:
    """The demo trail raises its story once, and reading it again raises nothing new."""
    shutil.copytree(EXAMPLES / "demo" / "AWSLogs", workspace.data / "AWSLogs")
    changes = workspace.root / "changes"
    changes.mkdir()
    workspace.write_config()
    with workspace.config.open("a") as config:
        config.write(f'\n[sources.itsm]\ntype = "changes_files"\npath = {toml_value(changes)}\n')
    assert workspace.backfill().returncode == 0

    found = alerts(workspace)
    assert {(a["rule"]["id"], *a["group"].values()) for a in found} == DEMO_ALERTS
    tampering = next(a for a in found if a["rule"]["id"] == "cloudtrail_tampering")
    assert tampering["severity"] == "high"
    assert tampering["environment"] == "cloud"
    assert "attack.t1562.008" in tampering["tags"]
    (evidence,) = tampering["evidence"]
    assert evidence["event.dataset"] == "aws.cloudtrail"
    assert evidence["id"] in workspace.timeline_ids()
    alice = next(a for a in found if a["group"].get("user.name") == "alice@example.com")
    assert [e["event.action"] for e in alice["evidence"]] == [
        "StopInstances",
        "PutBucketPolicy",
        "StartInstances",
    ]
    assert alice["context"] == {"nearest": []}, "no change record is near: none is named"

    assert [a["id"] for a in alerts(workspace, "--rule", "root_account_usage")] == [
        a["id"] for a in found if a["rule"]["id"] == "root_account_usage"
    ]
    assert (
        alerts(workspace, "--since", "2026-11-20T16:00:00Z", "--rule", "cloudtrail_tampering") == []
    )

    # Reading the same files again (checkpoints gone) raises nothing new, counts nothing twice.
    with sqlite3.connect(workspace.db) as db:
        db.execute("DELETE FROM checkpoints")
    again = workspace.backfill()
    assert again.returncode == 0
    assert "duplicates=377" in again.stdout
    assert alerts(workspace) == found


def _failed_login(minute: int, number: int) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventTime": f"2026-11-20T01:{minute:02d}:00Z",
        "eventID": f"0000000{number}-1111-2222-3333-444444444444",
        "eventName": "ConsoleLogin",
        "eventSource": "signin.amazonaws.com",
        "eventType": "AwsConsoleSignIn",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.99",
        "recipientAccountId": "111111111111",
        "readOnly": False,
        "userIdentity": {"type": "IAMUser", "userName": "eve", "accountId": "111111111111"},
        "responseElements": {"ConsoleLogin": "Failure"},
        "additionalEventData": {"MFAUsed": "No"},
    }


@pytest.mark.slow
def test_restart_inside_a_window_still_correlates(
    workspace: Workspace, daemons: Callable[[Workspace, str], Daemon]
) -> None:
    """Three failures, a restart, two more: one brute-force alert of five events."""
    put_file(
        workspace.data, log_name("first"), records_file(_failed_login(m, m) for m in (1, 2, 3))
    )
    workspace.write_config()
    first = daemons(workspace, "first")
    first.wait_started()
    wait_for("3 events", lambda: workspace.count() == 3, timeout=30, context=first.tail)
    assert first.stop() == 0, first.tail()
    assert alerts(workspace) == []

    put_file(workspace.data, log_name("second"), records_file(_failed_login(m, m) for m in (4, 5)))
    second = daemons(workspace, "second")
    second.wait_started()
    found = wait_for(
        "the brute-force alert",
        lambda: alerts(workspace, "--rule", "console_login_brute_force"),
        timeout=30,
        interval=0.3,
        context=second.tail,
    )
    assert second.stop() == 0, second.tail()
    (alert,) = found
    assert alert["count"] == 5
    assert alert["group"] == {"source.ip": "203.0.113.99"}


def test_rules_test_runs_offline_and_names_a_broken_rule(workspace: Workspace) -> None:
    demo = str(EXAMPLES / "demo" / "AWSLogs")
    result = auditcorr("rules", "test", "--events", demo, "--json", cwd=workspace.root)
    assert result.returncode == 0, str(result)
    found = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert {(a["rule"]["id"], *a["group"].values()) for a in found} == DEMO_ALERTS

    broken = workspace.root / "broken.yml"
    broken.write_text(
        "title: b\nname: b\nlogsource: {product: aws, service: cloudtrail}\n"
        "detection:\n  sel:\n    eventName|expand: '%names%'\n  condition: sel\n"
    )
    result = auditcorr("rules", "validate", "--rules", str(broken), cwd=workspace.root)
    assert result.returncode == 1
    assert "broken.yml" in result.stdout
    assert "placeholder" in result.stdout

    workspace.write_config()
    workspace.config.write_text(
        workspace.config.read_text()
        + f"\n[rules]\npaths = [{orjson.dumps(str(broken)).decode()}]\n"
    )
    result = workspace.backfill()
    assert result.returncode == 2
    assert "broken.yml" in result.stderr
