"""GCP audit logs end to end: a sink's files and change records through the real CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from apisupport import served
from cdp import Browser, find_chromium
from itsupport import Workspace, toml_value

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).parents[1] / "fixtures" / "gcp_audit" / "input.json"
PROJECT = "prod-analytics-4821"
INSTANCE = f"projects/{PROJECT}/zones/europe-west1-b/instances/etl-worker-1"

RECORD = {
    "id": "CHG0052001",
    "title": "Stop etl-worker-1 for a disk resize",
    "state": "approved",
    "implementers": ["alice"],
    "updated": "2026-11-19T10:00:00Z",
    "window": {"start": "2026-11-20T14:00:00Z", "end": "2026-11-20T14:30:00Z"},
    "scope": {"gcp_projects": [PROJECT], "actions": ["compute:*"]},
}


def deletion(stop: dict[str, Any]) -> dict[str, Any]:
    """alice deletes the instance two hours after the window closed."""
    entry = copy.deepcopy(stop)
    entry["insertId"] = "-2k9d7fe3b1xa"
    entry["timestamp"] = "2026-11-20T16:40:02.118204Z"
    entry["protoPayload"]["methodName"] = "v1.compute.instances.delete"
    entry["protoPayload"]["request"]["@type"] = "type.googleapis.com/compute.instances.delete"
    return entry


def write_workspace(workspace: Workspace, extra: str = "") -> None:
    """The sample (a covered stop, a read, a refused IAM change) and alice's deletion as a
    sink writes them, her change record, and alice in the identity map."""
    stop, *others = [orjson.loads(line) for line in SAMPLE.read_bytes().splitlines()]
    day = workspace.data / "gcp" / "cloudaudit.googleapis.com" / "activity" / "2026/11/20"
    day.mkdir(parents=True)
    entries = [stop, *others, deletion(stop)]
    (day / "14:00:00_14:59:59_S0.json").write_bytes(
        b"".join(orjson.dumps(e) + b"\n" for e in entries[:3])
    )
    (day / "16:00:00_16:59:59_S0.json").write_bytes(orjson.dumps(entries[3]) + b"\n")
    changes = workspace.data / "changes"
    changes.mkdir()
    (changes / "CHG0052001.json").write_text(json.dumps(RECORD))
    workspace.config.write_text(
        f"""
[daemon]
state_dir = {toml_value(workspace.state)}
workers = 1

[store]
retention_days = 0

[sources.gcp_org]
type = "gcp_audit_files"
path = {toml_value(workspace.data / "gcp")}

[sources.changes]
type = "changes_files"
path = {toml_value(changes)}

[[identity.people]]
id = "alice"
email = ["alice@example.com"]
"""
        + extra
    )


def test_a_gcp_write_outside_its_window_is_an_unapproved_change(workspace: Workspace) -> None:
    """The stop inside the approved window is covered; the deletion after it raises
    ``unapproved_change`` naming the record; reads and refused calls are no changes."""
    write_workspace(workspace)
    assert workspace.backfill().returncode == 0
    events = [d for d in workspace.timeline() if d["event"]["dataset"] == "gcp.audit"]
    assert len(events) == 4
    assert {d["event"]["action"]: d.get("actor") for d in events} == {
        "v1.compute.instances.stop": "alice",
        "v1.compute.instances.delete": "alice",
        "storage.objects.get": None,
        "SetIamPolicy": None,
    }
    result = workspace.cli("alerts", "--json", "--rule", "unapproved_change")
    assert result.returncode == 0, result
    (alert,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert alert["actors"] == ["alice"]
    assert [e["event.action"] for e in alert["evidence"]] == ["v1.compute.instances.delete"]
    (nearest,) = alert["context"]["nearest"]
    assert nearest["id"] == "CHG0052001"
    assert nearest["reasons"] == ["window ended 2 h 10 min before"]
    covered = workspace.cli("changes", "--covering=-8f3k2le1a9bc", "--json")
    assert covered.returncode == 0, covered
    assert json.loads(covered.stdout)["covered_by"] == ["CHG0052001"]


async def test_the_page_shows_gcp_events_with_their_badge(tmp_path: Path) -> None:
    """GCP events are in the cloud lane with a GCP badge and their project."""
    find_chromium()
    workspace = Workspace(tmp_path / "gcp")
    write_workspace(workspace, '\n[api]\nlisten = "127.0.0.1:0"\n')
    with served(workspace, "api") as api:
        events = api.get("/api/v1/events?dataset=gcp.audit").json()["events"]
        assert {(e["lane"], e["label"]) for e in events} == {("cloud", "GCP")}
        async with Browser(tmp_path / "profile") as browser:
            await browser.send("Page.navigate", url=f"{api.url}#dataset=gcp.audit")
            await browser.wait_for("document.querySelectorAll('.event').length === 4")
            badges = await browser.evaluate(
                "[...document.querySelectorAll('.event .badge')].map(b => b.textContent)"
            )
    assert badges == [f"GCP {PROJECT}"] * 4
