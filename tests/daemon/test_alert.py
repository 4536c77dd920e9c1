"""The alert's JSON form follows its evidence however the list changes."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta

import orjson

from daemon.alert import Alert, Evidence

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def evidence(n: int) -> Evidence:
    return Evidence(f"e{n}", T0 + timedelta(seconds=n), "system.auth", "ssh_login", f"line {n}")


def ids(alert: Alert) -> list[str]:
    return [item["id"] for item in alert.to_json()["evidence"]]


def test_the_json_follows_evidence_inserted_replaced_or_decoded() -> None:
    alert = Alert("a", "r", "t", "low", "on-prem", T0, T0, evidence=[evidence(1), evidence(3)])
    assert ids(alert) == ["e1", "e3"]
    bisect.insort(alert.evidence, evidence(2), key=lambda item: item.timestamp)
    assert ids(alert) == ["e1", "e2", "e3"]
    alert.evidence = [evidence(7), evidence(8), evidence(9)]  # same length, a new list
    assert ids(alert) == ["e7", "e8", "e9"]
    alert.to_json()["evidence"].clear()  # a reader's copy: the alert keeps its own
    assert Alert.from_json(alert.to_json()).to_json() == alert.to_json()
    assert ids(alert) == ["e7", "e8", "e9"]


def test_the_document_is_made_again_when_a_repeat_changes_the_alert() -> None:
    alert = Alert("a", "r", "t", "low", "on-prem", T0, T0, evidence=[evidence(1)])
    first = alert.document()
    assert first == orjson.dumps(alert.to_json())
    assert alert.document() is first
    alert.count += 1
    alert.last_seen = T0 + timedelta(seconds=2)
    assert orjson.loads(alert.document())["count"] == 2
    alert.environment = "hybrid"
    assert orjson.loads(alert.document())["environment"] == "hybrid"
    assert alert.document() == orjson.dumps(alert.to_json())
