"""Change records and identities end to end: the daemon as users run it, on the demo trail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from itsupport import Daemon, Workspace, copy_demo_trail, wait_for, write_changes_demo

pytestmark = pytest.mark.integration

STOP = "76684f96-6619-473e-81be-3b98445e93d6"
"""alice's StopInstances of i-0abc1234def567890 at 09:05:30 in the demo."""
DEMO_EVENTS = 377
CHANGE_EVENTS = 10
"""The example records' versions plus the openings and closings of their windows."""


UNAPPROVED = {
    # (user.name, the actions of the evidence): alice's maintenance is covered.
    ("alice@example.com", ("PutBucketPolicy",)),
    ("bob", ("UpdateAssumeRolePolicy",)),
    ("mallory", ("CreateUser", "AttachUserPolicy", "CreateAccessKey", "StopLogging")),
    ("root", ("DeleteBucket",)),
}


def unapproved(workspace: Workspace) -> list[dict[str, Any]]:
    result = workspace.cli("alerts", "--json", "--rule", "unapproved_change")
    assert result.returncode == 0, result
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert {
        (a["group"]["user.name"], tuple(e["event.action"] for e in a["evidence"])) for a in found
    } == UNAPPROVED
    return found


def check_alices_alert(found: list[dict[str, Any]]) -> None:
    """Her bucket policy change names her maintenance record, and why it does not cover it."""
    (alert,) = [a for a in found if a["actors"] == ["alice"]]
    assert alert["count"] == 1
    assert alert["severity"] == "medium"
    (evidence,) = alert["evidence"]
    assert alert["context"]["nearest"][0] == {
        "event": evidence["id"],
        "id": "CHG0041207",
        "reasons": [
            "resource arn:aws:s3:::prod-assets-apn1 not in scope",
            "action s3:PutBucketPolicy not in scope",
        ],
    }


def test_backfill_raises_the_unapproved_changes_of_the_demo(
    workspace: Workspace,
) -> None:
    write_changes_demo(workspace)
    assert workspace.backfill().returncode == 0
    check_alices_alert(unapproved(workspace))


def test_live_changes_are_judged_against_the_stored_records(
    workspace: Workspace, daemons: Callable[[Workspace, str], Daemon]
) -> None:
    write_changes_demo(workspace, with_trail=False)
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    wait_for(
        "change records",
        lambda: workspace.count() == CHANGE_EVENTS,
        timeout=60,
        context=daemon.tail,
    )
    copy_demo_trail(workspace)
    wait_for(
        "the demo trail",
        lambda: workspace.count() == DEMO_EVENTS + CHANGE_EVENTS,
        timeout=60,
        context=daemon.tail,
    )
    check_alices_alert(unapproved(workspace))
    assert daemon.stop() == 0


def changes(workspace: Workspace, *args: str) -> Any:
    result = workspace.cli("changes", "--json", *args)
    assert result.returncode == 0, result
    return json.loads(result.stdout)


def test_change_files_and_cloudtrail_meet_in_the_coverage_query(
    workspace: Workspace, daemons: Callable[[Workspace, str], Daemon]
) -> None:
    """The demo's maintenance is covered, the bucket policy change is not, and an edit
    to the record (cancelled) is picked up while the daemon runs."""
    write_changes_demo(workspace)
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    # 377 CloudTrail events, 4 record versions, 3 approved windows x 2 events.
    wait_for(
        "demo and change records",
        lambda: workspace.count() == DEMO_EVENTS + CHANGE_EVENTS,
        timeout=60,
        context=daemon.tail,
    )
    assert [r["id"] for r in changes(workspace)] == [
        "CHG0041211",
        "CHG0041207",
        "CHG0041214",
        "CHG0041190",
    ]

    verdict = changes(workspace, "--covering", STOP)
    assert verdict == {"event": STOP, "covered": True, "covered_by": ["CHG0041207"], "nearest": []}
    (policy,) = workspace.timeline("--action", "PutBucketPolicy")
    verdict = changes(workspace, "--covering", policy["event"]["id"])
    assert verdict["covered"] is False
    assert verdict["nearest"][0] == {
        "id": "CHG0041207",
        "reasons": [
            "resource arn:aws:s3:::prod-assets-apn1 not in scope",
            "action s3:PutBucketPolicy not in scope",
        ],
    }
    # The person behind the Identity Center session, on her events.
    assert policy["actor"] == "alice"
    window = workspace.timeline(
        "--dataset", "change", "--since", "2026-11-20T09:00:00Z", "--until", "2026-11-20T09:30:00Z"
    )
    assert sorted(d["message"] for d in window) == [
        "CHG0041207 window closed: Stop and start i-0abc1234def567890 to apply the kernel update",
        "CHG0041207 window opened: Stop and start i-0abc1234def567890 to apply the kernel update"
        " (implementers: alice)",
    ]

    record_file = workspace.data / "changes" / "CHG0041207.json"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "state": "cancelled"}))
    (workspace.data / "changes" / "broken.csv").write_text("id,title\nCHG9,x\n")
    wait_for(
        "the edited record",
        lambda: len(changes(workspace, "--history", "CHG0041207")) == 2,
        timeout=30,
        context=daemon.tail,
    )
    verdict = changes(workspace, "--covering", STOP)
    assert verdict["covered"] is False
    assert verdict["nearest"][0] == {"id": "CHG0041207", "reasons": ["state is cancelled"]}
    quarantine = workspace.cli("quarantine")
    assert "CSV lacks column(s) state, window_start, window_end" in quarantine.stdout

    whois = workspace.cli("whois", "alice@example.com", "--limit", "500", "--json")
    found = json.loads(whois.stdout)
    assert found["people"] == ["alice"]
    assert STOP in {doc["event"]["id"] for doc in found["events"]}
    assert {doc["actor"] for doc in found["events"]} == {"alice"}
    assert daemon.stop() == 0
