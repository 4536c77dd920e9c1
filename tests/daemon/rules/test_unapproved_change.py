"""unapproved_change: change hits judged against change records, live and in a backfill."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from connectors import registry
from connectors.changerecord import parse_record
from connectors.changes_files import ChangesFilesConfig
from connectors.cloudtrail_files import CloudtrailFilesConfig
from daemon.identity import build
from daemon.normalize import BookEntry, cloudtrail
from daemon.process import Processed
from daemon.rules.engine import RuleEngine
from daemon.rules.hits import HitMaker
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


def batch(*docs: dict[str, Any], records: tuple[dict[str, Any], ...] = ()) -> Processed:
    maker = HitMaker(load_rules([CHANGES]))
    out = Processed(source="trail", origin="test")
    for doc in docs:
        out.hits.extend(maker.hits(doc, "trail"))
    for record in records:
        change = parse_record(record)
        stored = orjson.dumps(change.to_json())
        entry = BookEntry(change.id, change.revision, None, 0, 0, 0, change.state, stored)
        out.changes.append((0, entry))
    return out


def engine(stored: list[dict[str, Any]], *, ordered: bool) -> RuleEngine:
    loaded = RuleEngine.load([CHANGES], ordered=ordered)
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


@pytest.mark.parametrize("ordered", [False, True], ids=["live", "backfill"])
def test_covered_changes_raise_nothing(ordered: bool) -> None:
    rules = engine([RECORD], ordered=ordered)
    alerts = rules.alerts_for([batch(alice("StopInstances"), alice("StartInstances"))])
    alerts += rules.finish()
    assert alerts == []
    assert rules.approvals.covered == 2


@pytest.mark.parametrize("ordered", [False, True], ids=["live", "backfill"])
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
def test_an_uncovered_change_names_the_record_and_why(
    record: dict[str, Any], reason: str, ordered: bool
) -> None:
    rules = engine([record], ordered=ordered)
    alerts = rules.alerts_for([batch(alice("StopInstances"))]) + rules.finish()
    (alert,) = alerts
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
    rules = engine([RECORD], ordered=False)
    docs = [alice("StopInstances"), alice("PutBucketPolicy"), alice("StartInstances")]
    (alert,) = rules.alerts_for([batch(*docs)])
    assert alert.count == 1
    assert [e.action for e in alert.evidence] == ["PutBucketPolicy"]
    (nearest,) = alert.context["nearest"]
    assert nearest["reasons"] == [
        "resource arn:aws:s3:::prod-assets-apn1 not in scope",
        "action s3:PutBucketPolicy not in scope",
    ]
    late = alice("PutBucketPolicy", eventID="second-policy", eventTime="2026-11-20T09:40:00Z")
    (again,) = rules.alerts_for([batch(late)])
    assert again.id == alert.id
    assert again.count == 2
    assert [n["event"] for n in again.context["nearest"]] == [
        e.id for e in again.evidence if e.action == "PutBucketPolicy"
    ]


def test_live_a_record_in_the_same_batch_covers() -> None:
    rules = engine([], ordered=False)
    assert rules.alerts_for([batch(alice("StopInstances"), records=(RECORD,))]) == []


def test_live_a_newer_version_in_the_batch_replaces_the_stored_one() -> None:
    rules = engine([RECORD], ordered=False)
    cancelled = {**RECORD, "state": "cancelled"}
    (alert,) = rules.alerts_for([batch(alice("StopInstances"), records=(cancelled,))])
    assert alert.context["nearest"][0]["reasons"] == ["state is cancelled"]


def test_backfill_judges_after_every_source_is_read() -> None:
    """The trail is read before the change records: the backfill still sees them."""
    stored: list[dict[str, Any]] = []
    rules = engine(stored, ordered=True)
    assert rules.alerts_for([batch(alice("StopInstances"))]) == []
    stored.append(RECORD)  # the changes source is written after the trail
    assert rules.finish() == []


def test_without_any_record_every_change_is_unapproved() -> None:
    rules = engine([], ordered=False)
    (alert,) = rules.alerts_for([batch(alice("StopInstances"))])
    assert alert.context == {"nearest": []}


def test_a_backfill_past_its_hit_limit_correlates_in_chunks_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Held hits are bounded: when the limit is reached they are correlated in order and
    holding starts over, and the alert ends as it would with everything held."""
    cancelled = [{**RECORD, "state": "cancelled"}]
    batches = [batch(alice("StopInstances")), batch(alice("StartInstances"))]

    whole = engine(cancelled, ordered=True)
    assert [whole.alerts_for([b]) for b in batches] == [[], []]
    (expected,) = whole.finish()

    monkeypatch.setattr("daemon.rules.engine.MAX_BACKFILL_HITS", 1)
    chunked = engine(cancelled, ordered=True)
    raised = [(alert.id, alert.count) for b in batches for alert in chunked.alerts_for([b])]
    assert chunked.finish() == []
    assert expected.count == 2
    assert raised == [(expected.id, 1), (expected.id, 2)]


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
    assert rules.alerts_for([batch(alice("StopInstances"))]) == []
    assert [(log["event"], log["rule"], log["hint"]) for log in logs] == [
        ("rule_disabled", "unapproved_change", TURN_ON)
    ]
    sources = {"ct": trail, "itsm": changes}
    with capture_logs() as logs:
        rules.approvals = approvals_for(_reader([]), IDENTITIES, rules.loaded, sources)
    assert logs == []
    (alert,) = rules.alerts_for([batch(alice("StopInstances"))])
    assert alert.rule_id == "unapproved_change"
