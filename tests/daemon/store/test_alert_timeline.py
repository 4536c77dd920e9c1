"""Alerts are events on the timeline, written in the correlator's transaction that
stores them, and never matched by detection rules: no alert raises another."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from storesupport import commit_alerts
from testdata import RULE_PACKS, rule_pack

from connectors.base import NormalizationError
from daemon.alert import Alert, Evidence, alert_id
from daemon.normalize import alert as alert_log
from daemon.rules.hits import HitMaker
from daemon.rules.loader import load_rules
from daemon.store.base import EventQuery, Store

T0 = datetime(2026, 11, 20, 9, 14, 5, tzinfo=UTC)


def unapproved() -> Alert:
    return Alert(
        id=alert_id("unapproved_change", {"actor": "alice"}, T0, "ev-1"),
        rule_id="unapproved_change",
        title="Change without an approved change record",
        severity="medium",
        environment="cloud",
        first_seen=T0,
        last_seen=T0,
        count=1,
        tags=["attack.t1098"],
        actors=["alice"],
        evidence=[Evidence("ev-1", T0, "aws.cloudtrail", "PutBucketPolicy", None)],
        group={"actor": "alice"},
        context={"nearest": [{"event": "ev-1", "id": "CHG0041207", "reasons": ["x"]}]},
    )


def entries(store: Store) -> list[dict[str, object]]:
    return store.search(EventQuery(dataset="auditcorr.alert", order="oldest", limit=100))


def test_raised_and_updated_alerts_are_timeline_entries(store: Store) -> None:
    """On both engines: an entry per raising and update, each stored once."""
    alert = unapproved()
    commit_alerts(store, [alert])
    (raised,) = entries(store)
    assert raised["event"]["kind"] == "alert"
    assert raised["event"]["action"] == "alert_raised"
    assert raised["event"]["id"] == f"{alert.id}-1"
    assert raised["@timestamp"] == "2026-11-20T09:14:05Z"
    assert raised["message"] == "Change without an approved change record"
    assert raised["rule"] == {"id": "unapproved_change", "name": alert.title}
    assert raised["event"]["severity"] == 2
    assert raised["labels"] == {"alert_id": alert.id, "severity": "medium", "environment": "cloud"}
    assert raised["event"]["category"] == ["intrusion_detection"]
    assert raised["event"]["reference"] == f"/api/v1/alerts/{alert.id}"
    assert raised["related"] == {"user": ["alice"]}
    assert raised["actor"] == "alice"
    assert raised["original"] == alert.to_json()

    later = replace(alert, count=2, last_seen=T0 + timedelta(minutes=5))
    commit_alerts(store, [later])
    commit_alerts(store, [later])  # the same update again: stored once
    assert [(e["event"]["action"], e["event"]["id"]) for e in entries(store)] == [
        ("alert_raised", f"{alert.id}-1"),
        ("alert_updated", f"{alert.id}-2"),
    ]
    assert [a.count for a in store.alerts()] == [2]


def test_an_address_the_alert_is_grouped_by_is_related() -> None:
    alert = replace(unapproved(), group={"source.ip": "203.0.113.66", "actor": "alice"})
    event = alert_log.normalize(alert.to_json())
    assert event.related_ip == ["203.0.113.66"]


def test_an_entry_whose_record_is_not_an_alert_is_refused() -> None:
    with pytest.raises(NormalizationError, match="not an alert"):
        alert_log.normalize({"id": "x"})


def lookalike() -> Alert:
    """An alert whose title, actor and address are what many rules look for."""
    return replace(
        unapproved(),
        title="SSH brute force: Failed password for root from 203.0.113.66 (sudo rm -rf /)",
        severity="high",
        actors=["root"],
        group={"source.ip": "203.0.113.66"},
    )


@pytest.mark.parametrize("name", RULE_PACKS)
def test_an_alert_entry_matches_no_rule_of_any_pack(name: str) -> None:
    """No rule of the pack, built-in or SigmaHQ aws and linux, looks at the alert dataset."""
    maker = HitMaker(load_rules(rule_pack(name)))
    doc = alert_log.normalize(lookalike().to_json()).to_document()
    assert doc["event"]["dataset"] == "auditcorr.alert"
    assert not maker.covers("auditcorr.alert")
    assert maker.hits(doc, "replayed") == []
