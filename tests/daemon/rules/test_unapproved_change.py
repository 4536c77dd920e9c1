"""unapproved_change: change hits judged against the change records stored when correlated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from connectors import registry
from connectors.contracts.change_record import parse_record
from connectors.sources.changes_files import ChangesFilesConfig
from connectors.sources.cloudtrail_files import CloudtrailFilesConfig
from daemon.identity import build
from daemon.normalize import cloudtrail
from daemon.rules.engine import RuleEngine
from daemon.rules.hits import Hit, HitMaker
from daemon.rules.loader import builtin_path, load_rules
from daemon.rules.unapproved import TURN_ON, Approvals, approvals_for, brings_change_records

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "tests" / "daemon" / "changes" / "samples"
IDENTITIES = build([{"id": "alice", "email": ["alice@example.com"], "unix": ["asmith"]}])
CHANGES = builtin_path() / "changes.yml"
RECORD = orjson.loads((REPO / "examples" / "changes" / "CHG0041207.json").read_bytes())
"""The demo's maintenance: alice stops and starts one instance, 09:00-09:30."""


def alice(name: str, **changed: Any) -> dict[str, Any]:
    """alice's demo maintenance call ``name`` as the daemon stores it (actor resolved)."""
    records = orjson.loads((SAMPLES / "alice_maintenance.json").read_bytes())["Records"]
    (record,) = [r for r in records if r["eventName"] == name]
    event = cloudtrail.normalize({**record, **changed})
    event.actor = IDENTITIES.actor_of(event)
    return event.to_document()


def hits(*docs: dict[str, Any]) -> list[Hit]:
    maker = HitMaker(load_rules([CHANGES]))
    return [hit for doc in docs for hit in maker.hits(doc, "trail")]


def engine(stored: list[dict[str, Any]]) -> RuleEngine:
    loaded = RuleEngine.load([CHANGES])
    loaded.approvals = Approvals(_reader(stored), IDENTITIES)
    return loaded


def _reader(stored: list[dict[str, Any]]) -> Callable[[datetime, datetime], list[dict[str, Any]]]:
    return lambda since, until: [parse_record(r).to_json() for r in stored]


def test_the_rule_selects_change_class_events_only() -> None:
    maker = HitMaker(load_rules([CHANGES]))
    (hit,) = maker.hits(alice("StopInstances"), "trail")
    assert hit.rule == "unapproved_change"
    assert hit.facts is not None
    assert hit.facts.people == ("alice", "alice@example.com")
    assert maker.hits(alice("StopInstances", readOnly=True), "trail") == []
    assert maker.hits(alice("StopInstances", errorCode="UnauthorizedOperation"), "trail") == []


def test_covered_changes_raise_nothing() -> None:
    rules = engine([RECORD])
    assert rules.correlate(hits(alice("StopInstances"), alice("StartInstances"))) == []
    assert rules.approvals.covered == 2


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            {**RECORD, "window": {"start": "2026-11-20T07:00:00Z", "end": "2026-11-20T08:20:00Z"}},
            "window ended 46 min before",
        ),
        (
            {**RECORD, "scope": {**RECORD["scope"], "aws_regions": ["us-east-1"]}},
            "region ap-northeast-1 not in scope",
        ),
        ({**RECORD, "implementers": ["bob"]}, "alice is not an implementer (bob)"),
        ({**RECORD, "state": "cancelled"}, "state is cancelled"),
    ],
    ids=["out-of-window", "out-of-scope", "wrong-person", "cancelled"],
)
def test_an_uncovered_change_names_the_record_and_why(record: dict[str, Any], reason: str) -> None:
    rules = engine([record])
    (alert,) = rules.correlate(hits(alice("StopInstances")))
    assert alert.rule_id == "unapproved_change"
    assert alert.severity == "medium"
    assert alert.actors == ["alice"]
    assert alert.group == {
        "actor": "alice",
        "user.name": "alice@example.com",
        "host.name": "",
        "cloud.account.id": "111111111111",
    }
    (evidence,) = alert.evidence
    assert alert.context == {
        "nearest": [{"event": evidence.id, "id": "CHG0041207", "reasons": [reason]}]
    }


def test_one_persons_burst_is_one_alert_with_a_count() -> None:
    """The bucket policy change is out of scope; the stop and start are covered."""
    rules = engine([RECORD])
    docs = [alice("StopInstances"), alice("PutBucketPolicy"), alice("StartInstances")]
    (alert,) = rules.correlate(hits(*docs))
    assert alert.count == 1
    assert [e.action for e in alert.evidence] == ["PutBucketPolicy"]
    (nearest,) = alert.context["nearest"]
    assert nearest["reasons"] == [
        "resource arn:aws:s3:::prod-assets-apn1 not in scope",
        "action s3:PutBucketPolicy not in scope",
    ]
    late = alice("PutBucketPolicy", eventID="second-policy", eventTime="2026-11-20T09:40:00Z")
    (again,) = rules.correlate(hits(late))
    assert again.id == alert.id
    assert again.count == 2
    assert [n["event"] for n in again.context["nearest"]] == [
        e.id for e in again.evidence if e.action == "PutBucketPolicy"
    ]


def test_changes_are_judged_against_the_records_stored_when_correlated() -> None:
    """A record stored after the change's event but before the round is correlated (a
    backfill correlates once every source is read) covers it."""
    stored: list[dict[str, Any]] = []
    rules = engine(stored)
    stored.append(RECORD)
    assert rules.correlate(hits(alice("StopInstances"))) == []
    stored[0] = {**RECORD, "state": "cancelled"}
    (alert,) = rules.correlate(hits(alice("StartInstances")))
    assert alert.context["nearest"][0]["reasons"] == ["state is cancelled"]


def test_without_any_record_every_change_is_unapproved() -> None:
    rules = engine([])
    (alert,) = rules.correlate(hits(alice("StopInstances")))
    assert alert.context == {"nearest": []}


def test_only_sources_of_change_records_count_as_change_sources() -> None:
    """Whether a source brings change records is read from its log type, for every
    source type in the registry."""
    found = {name for name in registry.SOURCES if brings_change_records(name)}
    assert found == {"changes_files", "changes_http", "servicenow"}


def test_without_a_change_source_the_rule_is_off_and_said_once(tmp_path: Path) -> None:
    """No change source: change hits raise nothing and one notice says how to turn the rule
    on; with one, the same change is judged and raises its alert."""
    trail = CloudtrailFilesConfig(type="cloudtrail_files", path=tmp_path)
    changes = ChangesFilesConfig(type="changes_files", path=tmp_path)
    rules = RuleEngine.load([CHANGES])
    with capture_logs() as logs:
        rules.approvals = approvals_for(_reader([]), IDENTITIES, rules.loaded, {"ct": trail})
    assert rules.correlate(hits(alice("StopInstances"))) == []
    assert [(log["event"], log["rule"], log["hint"]) for log in logs] == [
        ("rule_disabled", "unapproved_change", TURN_ON)
    ]
    sources = {"ct": trail, "itsm": changes}
    with capture_logs() as logs:
        rules.approvals = approvals_for(_reader([]), IDENTITIES, rules.loaded, sources)
    assert logs == []
    (alert,) = rules.correlate(hits(alice("StopInstances")))
    assert alert.rule_id == "unapproved_change"
