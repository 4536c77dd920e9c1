"""Alerts, change records, coverage, people and delivery metrics over real HTTP.

The store is filled as users fill it: ``auditcorr backfill`` of the demo trail
and the example change records raises the demo's alerts and keeps the records;
then ``auditcorr run`` serves them, its webhook output refusing every send.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apisupport import TOKENS, ApiDaemon, hash_token
from itsupport import Daemon, Workspace, wait_for, write_changes_demo
from metricsupport import samples, value

pytestmark = pytest.mark.integration

STOP = "76684f96-6619-473e-81be-3b98445e93d6"
"""alice's StopInstances of i-0abc1234def567890, inside CHG0041207's window."""
DEMO_ALERTS = 11
"""The demo trail with the change records: seven rule alerts and four unapproved changes."""
HIGH_OR_ABOVE = 5


def write_config(workspace: Workspace) -> None:
    write_changes_demo(
        workspace,
        f"""
[outputs.soar]
type = "webhook"
endpoint = "http://127.0.0.1:9/alerts"
min_severity = "high"

[api]
listen = "127.0.0.1:0"

[[api.tokens]]
name = "reader"
role = "reader"
hash = "{hash_token(TOKENS["reader"])}"
""",
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiDaemon]:
    workspace = Workspace(tmp_path_factory.mktemp("resources"))
    write_config(workspace)
    backfill = workspace.backfill("--no-deliver")
    assert backfill.returncode == 0, str(backfill)
    daemon = Daemon(workspace, "api").start()
    try:
        yield ApiDaemon(daemon)
    finally:
        daemon.kill_group()


def test_alerts_list_newest_first_with_filters(api: ApiDaemon) -> None:
    """The demo's alerts, newest first; severity is a floor, rule and limit narrow."""
    alerts = api.get("/api/v1/alerts").json()["alerts"]
    assert len(alerts) == DEMO_ALERTS
    last_seen = [a["last_seen"] for a in alerts]
    assert last_seen == sorted(last_seen, reverse=True)
    high = api.get("/api/v1/alerts?severity=high").json()["alerts"]
    assert len(high) == HIGH_OR_ABOVE
    assert {a["severity"] for a in high} <= {"high", "critical"}
    (tampering,) = api.get("/api/v1/alerts?rule=cloudtrail_tampering").json()["alerts"]
    assert tampering["rule"]["title"]
    assert tampering["evidence"][0]["event.action"] == "StopLogging"
    assert api.get("/api/v1/alerts?limit=2").json()["alerts"] == alerts[:2]
    assert api.get("/api/v1/alerts?since=2030-01-01").json() == {"alerts": []}
    assert api.get("/api/v1/alerts?severity=dire").json()["error"].startswith("severity:")


def test_one_alert_has_its_evidence_events_and_deliveries(api: ApiDaemon) -> None:
    """alerts/{id}: evidence resolved to timeline events; the refused webhook's retries."""
    (tampering,) = api.get("/api/v1/alerts?rule=cloudtrail_tampering").json()["alerts"]

    def tried() -> dict[str, object] | None:
        detail = api.get(f"/api/v1/alerts/{tampering['id']}").json()
        (row,) = detail["deliveries"]
        return detail if row["attempts"] >= 1 else None

    detail = wait_for("a delivery attempt", tried, timeout=30, context=api.daemon.tail)
    assert detail["id"] == tampering["id"]
    (evidence,) = detail["evidence"]
    event = evidence["event"]
    assert event["document"]["event"]["id"] == evidence["id"]
    assert api.get(f"/api/v1/events/{event['id']}").json()["document"]["event"]["action"] == (
        "StopLogging"
    )
    (row,) = detail["deliveries"]
    assert row["output"] == "soar"
    assert row["state"] == "pending"
    assert row["last_error"]
    low = next(
        a for a in api.get("/api/v1/alerts").json()["alerts"] if a["severity"] in ("low", "medium")
    )
    assert api.get(f"/api/v1/alerts/{low['id']}").json()["deliveries"] == []
    assert api.get("/api/v1/alerts/not-an-alert").status == 404


def test_events_of_an_alert(api: ApiDaemon) -> None:
    """events?alert=ID lists the alert's evidence events, in the asked order."""
    (brute,) = api.get("/api/v1/alerts?rule=console_login_brute_force").json()["alerts"]
    listed = api.get(f"/api/v1/events?alert={brute['id']}&order=oldest").json()
    assert listed["next_cursor"] is None
    ids = [e["document"]["event"]["id"] for e in listed["events"]]
    assert ids == [evidence["id"] for evidence in brute["evidence"]]
    assert len(ids) > 1
    newest = api.get(f"/api/v1/events?alert={brute['id']}&limit=2").json()["events"]
    assert newest == listed["events"][::-1][:2]
    assert api.get("/api/v1/events?alert=nothing").status == 404
    mixed = api.get(f"/api/v1/events?alert={brute['id']}&user=mallory")
    assert mixed.status == 400
    assert mixed.json()["error"].startswith("alert:")


def test_changes_and_their_history(api: ApiDaemon) -> None:
    """changes lists the current records by window; state filters; changes/{id} has history."""
    listed = api.get("/api/v1/changes").json()["changes"]
    assert {r["id"] for r in listed} == {"CHG0041214", "CHG0041211", "CHG0041207", "CHG0041190"}
    starts = [r["window"]["start"] for r in listed]
    assert starts == sorted(starts)
    approved = api.get("/api/v1/changes?state=approved").json()["changes"]
    assert approved
    assert all(r["state"] == "approved" for r in approved)
    assert api.get("/api/v1/changes?since=2030-01-01").json() == {"changes": []}
    one = api.get("/api/v1/changes/CHG0041207").json()
    assert one["record"]["id"] == "CHG0041207"
    assert [v["id"] for v in one["history"]] == ["CHG0041207"]
    assert api.get("/api/v1/changes/CHG0").status == 404
    assert api.get("/api/v1/changes?state=maybe").status == 400


def test_event_coverage_names_the_record_or_the_nearest(api: ApiDaemon) -> None:
    """The maintenance stop is covered by CHG0041207; the bucket policy change is not."""
    stops = api.get("/api/v1/events?action=StopInstances&limit=500").json()["events"]
    (stop,) = [e for e in stops if e["document"]["event"]["id"] == STOP]
    verdict = api.get(f"/api/v1/events/{stop['id']}/coverage").json()
    assert verdict == {
        "event": stop["id"],
        "covered": True,
        "covered_by": ["CHG0041207"],
        "nearest": [],
    }
    (policy,) = api.get("/api/v1/events?action=PutBucketPolicy").json()["events"]
    verdict = api.get(f"/api/v1/events/{policy['id']}/coverage").json()
    assert verdict["covered"] is False
    assert verdict["nearest"][0]["id"] == "CHG0041207"
    assert "action s3:PutBucketPolicy not in scope" in verdict["nearest"][0]["reasons"]
    assert api.get("/api/v1/events/12345/coverage").status == 404


def test_change_review_marks_the_bucket_policy_out_of_scope(api: ApiDaemon) -> None:
    """CHG0041207's review: the stop and start in scope, the bucket policy out of it, each
    with its event's API key; an unknown record is 404."""
    review = api.get("/api/v1/changes/CHG0041207/review").json()
    assert review["verdict"] == "scope_creep"
    assert review["change"]["id"] == "CHG0041207"
    assert [(e["action"], e["in_scope"]) for e in review["inside"]] == [
        ("ec2:StopInstances", True),
        ("s3:PutBucketPolicy", False),
        ("ec2:StartInstances", True),
    ]
    assert review["inside"][1]["reasons"][-1] == "action s3:PutBucketPolicy not in scope"
    assert review["implementers"][0]["people"][0]["id"] == "alice"
    assert review["counts"]["out_of_scope"] == 1
    stop = api.get(f"/api/v1/events/{review['inside'][0]['key']}").json()
    assert stop["document"]["event"]["id"] == STOP
    assert api.get("/api/v1/changes/CHG0/review").status == 404


def test_a_person_has_identity_and_recent_events(api: ApiDaemon) -> None:
    """people/alice: the identity map's entry and her newest events; unknown ids are 404."""
    alice = api.get("/api/v1/people/alice?limit=5").json()
    assert alice["identity"]["unix"] == [{"name": "alice", "hosts": []}]
    assert alice["identity"]["emails"] == ["alice@example.com"]
    assert len(alice["events"]) == 5
    assert {e["document"]["actor"] for e in alice["events"]} == {"alice"}
    times = [e["document"]["@timestamp"] for e in alice["events"]]
    assert times == sorted(times, reverse=True)
    assert api.get("/api/v1/people/nobody").status == 404


def test_metrics_count_alerts_and_deliveries(api: ApiDaemon) -> None:
    """/metrics has the alerts counter and the outbox rows per output and state."""
    found = samples(api.get("/metrics", token=TOKENS["reader"]).body.decode())
    assert value(found, "auditcorr_alerts_raised_total") == 0  # raised by the backfill
    pending = value(found, "auditcorr_outbox_deliveries", output="soar", state="pending")
    assert pending == HIGH_OR_ABOVE
    assert value(found, "auditcorr_outbox_deliveries", output="soar", state="failed") == 0
