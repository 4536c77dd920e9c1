"""Alerts are events on the timeline, written in the transaction that stores them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import NormalizationError
from daemon.alert import Alert, Evidence, alert_id
from daemon.normalize import alert as alert_log
from daemon.store.base import EventQuery
from daemon.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 20, 9, 14, 5, tzinfo=UTC)


def unapproved() -> Alert:
    return Alert(
        id=alert_id("unapproved_change", "actor=alice", T0),
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


def entries(store: SqliteStore) -> list[dict[str, object]]:
    return store.search(EventQuery(dataset="auditcorr.alert", order="oldest", limit=100))


def test_raised_and_updated_alerts_are_timeline_entries(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db", retention_days=0)
    alert = unapproved()
    written = store.write([], [alert])
    assert written.stored == 0, "alert entries are not counted as events read"
    (raised,) = entries(store)
    assert raised["event"]["kind"] == "alert"
    assert raised["event"]["action"] == "alert_raised"
    assert raised["event"]["id"] == f"{alert.id}-1"
    assert raised["@timestamp"] == "2026-11-20T09:14:05Z"
    assert raised["message"] == "Change without an approved change record"
    assert raised["rule"] == {"id": "unapproved_change", "name": alert.title}
    assert raised["event"]["severity"] == 2
    assert raised["labels"] == {"alert_id": alert.id, "severity": "medium"}
    assert raised["actor"] == "alice"
    assert raised["original"] == alert.to_json()

    later = replace(alert, count=2, last_seen=T0 + timedelta(minutes=5))
    store.write([], [later])
    store.write([], [later])  # the same update again (a rebuild): stored once
    assert [(e["event"]["action"], e["event"]["id"]) for e in entries(store)] == [
        ("alert_raised", f"{alert.id}-1"),
        ("alert_updated", f"{alert.id}-2"),
    ]
    assert [a.count for a in store.alerts()] == [2]
    store.close()


def test_an_entry_whose_record_is_not_an_alert_is_refused() -> None:
    with pytest.raises(NormalizationError, match="not an alert"):
        alert_log.normalize({"id": "x"})
