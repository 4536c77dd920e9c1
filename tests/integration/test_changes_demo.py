"""Change records and identities end to end: the daemon as users run it, on the demo trail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from itsupport import Daemon, Workspace, wait_for, write_changes_demo

pytestmark = pytest.mark.integration

STOP = "76684f96-6619-473e-81be-3b98445e93d6"
"""alice's StopInstances of i-0abc1234def567890 at 09:05:30 in the demo."""
DEMO_EVENTS = 377


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
        lambda: workspace.count() == DEMO_EVENTS + 10,
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
