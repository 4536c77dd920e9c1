"""Correlation rules in event time: sliding windows, lateness, suppression, restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from committed import Committed

from daemon.alert import Alert
from daemon.model import format_timestamp
from daemon.rules import correlate, windows
from daemon.rules.correlate import Correlator
from daemon.rules.hits import Hit, HitMaker
from daemon.rules.loader import load_rules

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)

BASE = """
title: ssh failure
name: ssh_fail
logsource: {product: linux, service: sshd}
detection:
  sel: {event.action: ssh_login, event.outcome: failure}
  condition: sel
---
title: ssh success
name: ssh_ok
logsource: {product: linux, service: sshd}
detection:
  sel: {event.action: ssh_login, event.outcome: success}
  condition: sel
---
title: console login
name: console
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: ConsoleLogin}
  condition: sel
"""


def rules(tmp_path: Path, correlation: str) -> HitMaker:
    (tmp_path / "r.yml").write_text(BASE + "---\n" + correlation)
    return HitMaker(load_rules([tmp_path]))


def ssh(
    at: timedelta, outcome: str, ip: str = "203.0.113.66", user: str = "root"
) -> dict[str, Any]:
    return {
        "@timestamp": format_timestamp(T0 + at),
        "event": {
            "id": f"ssh-{at.total_seconds()}-{outcome}-{ip}-{user}",
            "dataset": "system.auth",
            "action": "ssh_login",
            "outcome": outcome,
        },
        "process": {"name": "sshd"},
        "source": {"ip": ip},
        "user": {"name": user},
        "message": f"{outcome} for {user} from {ip}",
    }


def console(at: timedelta, ip: str = "203.0.113.66") -> dict[str, Any]:
    return {
        "@timestamp": format_timestamp(T0 + at),
        "event": {"id": f"ct-{at.total_seconds()}", "dataset": "aws.cloudtrail"},
        "original": {"eventName": "ConsoleLogin", "sourceIPAddress": ip},
        "user": {"name": "mallory"},
    }


def feed(
    correlator: Correlator, maker: HitMaker, docs: list[dict[str, Any]], source: str = "s"
) -> list[Alert]:
    hits: list[Hit] = [hit for doc in docs for hit in maker.hits(doc, source)]
    return correlator.feed(hits)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


BRUTE = """
title: brute force
name: brute
level: high
correlation:
  type: event_count
  rules: [ssh_fail]
  group-by: [source.ip]
  timespan: 10m
  condition: {gte: 5}
"""


def test_event_count_window_slides_across_boundaries(tmp_path: Path) -> None:
    maker = rules(tmp_path, BRUTE)
    correlator = Correlator(maker_rules(tmp_path))
    # 07, 09 | 11, 13, 15: a tumbling 10-minute bucket would split them 2 + 3.
    docs = [ssh(minutes(m), "failure") for m in (7, 9, 11, 13, 15)]
    alerts = [a for a in feed(correlator, maker, docs) if a.rule_id == "brute"]
    (alert,) = alerts
    assert alert.count == 5
    assert alert.group == {"source.ip": "203.0.113.66"}
    assert alert.first_seen == T0 + minutes(7)
    assert alert.severity == "high"
    assert [e.id for e in alert.evidence] == [d["event"]["id"] for d in docs]


def maker_rules(tmp_path: Path) -> Any:
    return load_rules([tmp_path])


def test_event_count_below_threshold_or_spread_out_is_silent(tmp_path: Path) -> None:
    maker = rules(tmp_path, BRUTE)
    correlator = Correlator(maker_rules(tmp_path))
    spread = [ssh(minutes(m), "failure") for m in (0, 4, 8, 12, 16, 20)]  # 3 per 10 min
    other_ips = [ssh(minutes(1), "failure", ip=f"198.51.100.{i}") for i in range(4)]
    assert feed(correlator, maker, spread + other_ips) == []


def test_late_event_completes_window_then_too_late_is_counted(tmp_path: Path) -> None:
    maker = rules(tmp_path, BRUTE)
    correlator = Correlator(maker_rules(tmp_path), allowed_lateness=minutes(20))
    assert feed(correlator, maker, [ssh(minutes(m), "failure") for m in (1, 2, 3, 5)]) == []
    feed(correlator, maker, [ssh(minutes(15), "success")])  # moves the watermark
    (alert,) = feed(correlator, maker, [ssh(minutes(4), "failure")])  # late, within lateness
    assert alert.count == 5
    assert alert.first_seen == T0 + minutes(1)
    fresh = Correlator(maker_rules(tmp_path), allowed_lateness=minutes(20))
    feed(fresh, maker, [ssh(minutes(60), "success")])
    assert feed(fresh, maker, [ssh(minutes(m), "failure") for m in (1, 2, 3, 4, 5)]) == []
    assert fresh.late == 5


def test_repeats_within_suppression_update_the_alert(tmp_path: Path) -> None:
    maker = rules(tmp_path, BRUTE)
    correlator = Correlator(maker_rules(tmp_path), suppress_for=timedelta(hours=1))
    (first,) = feed(correlator, maker, [ssh(minutes(m), "failure") for m in range(5)])
    (again,) = feed(correlator, maker, [ssh(minutes(30), "failure")])
    assert again.id == first.id
    assert again.count == 6
    assert again.last_seen == T0 + minutes(30)
    (later,) = feed(correlator, maker, [ssh(minutes(m), "failure") for m in range(200, 205)])
    assert later.id != first.id


def test_restarts_inside_a_window_continue_from_the_committed_state(tmp_path: Path) -> None:
    """The committed state rows, loaded into a new correlator (a restart), continue the
    window and the open alert exactly as without the restart: same id, same count."""
    maker = rules(tmp_path, BRUTE)
    docs = [ssh(minutes(m), "failure") for m in range(8)]
    (whole,) = feed(Correlator(maker_rules(tmp_path)), maker, docs)
    committed = Committed()
    before = committed.attach(Correlator(maker_rules(tmp_path)))
    assert feed(before, maker, docs[:3]) == []
    committed.commit(before)
    after = committed.attach(Correlator(maker_rules(tmp_path)))
    (raised,) = feed(after, maker, docs[3:5])
    assert (raised.id, raised.count) == (whole.id, 5)
    committed.commit(after)
    last = committed.attach(Correlator(maker_rules(tmp_path)))
    (updated,) = feed(last, maker, docs[5:])
    assert updated.to_json() == whole.to_json()


def test_state_rows_follow_the_windows_and_go_when_pruned(tmp_path: Path) -> None:
    """Only what changed is reported, and expired windows and alerts are deleted rows:
    the committed state stays as bounded as the memory."""
    maker = rules(tmp_path, BRUTE)
    correlator = Correlator(maker_rules(tmp_path), allowed_lateness=timedelta(minutes=1))
    committed = Committed()
    committed.attach(correlator)
    feed(correlator, maker, [ssh(minutes(m), "failure") for m in range(5)])
    first = committed.commit(correlator)
    assert {orjson.loads(name)[0] for name in first} == {"open", "watermark"}
    assert all(value is not None for value in first.values())
    assert committed.hits_of("brute") == 5
    assert correlator.changes() == {}
    assert correlator.windows.changes() == ([], {}, None)
    feed(correlator, maker, [ssh(minutes(600), "failure", ip="198.51.100.9")])
    correlator.prune()
    changed = committed.commit(correlator)
    gone = {name for name, value in changed.items() if value is None}
    assert {name for name in first if orjson.loads(name)[0] != "watermark"} <= gone
    assert committed.hits_of("brute") == 1  # the new address's; the old window swept


def test_groups_leave_memory_and_come_back_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A durable correlator keeps at most ``HELD_IN_MEMORY`` hits and groups between
    rounds; a group that left memory is read back when a hit arrives for it, and its
    window goes on as if it had stayed."""
    monkeypatch.setattr(windows, "HELD_IN_MEMORY", 4)
    maker = rules(tmp_path, BRUTE)
    addresses = [f"198.51.100.{n}" for n in range(10)]
    committed = Committed()
    correlator = committed.attach(Correlator(maker_rules(tmp_path)))
    for m in range(4):
        feed(correlator, maker, [ssh(minutes(m), "failure", ip=ip) for ip in addresses])
        committed.commit(correlator)
        assert correlator.windows.held() + len(correlator.windows) <= 4
    assert committed.hits_of("brute") == 40
    raised = feed(correlator, maker, [ssh(minutes(4), "failure", ip=ip) for ip in addresses])
    assert sorted(alert.group["source.ip"] for alert in raised) == sorted(addresses)
    assert all(alert.count == 5 for alert in raised)


def test_value_count(tmp_path: Path) -> None:
    maker = rules(
        tmp_path,
        "title: spray\nname: spray\ncorrelation:\n  type: value_count\n  rules: [ssh_fail]\n"
        "  group-by: [source.ip]\n  timespan: 5m\n  condition: {gte: 3, field: user.name}\n",
    )
    correlator = Correlator(maker_rules(tmp_path))
    same_user = [ssh(minutes(m), "failure", user="root") for m in range(4)]
    assert feed(correlator, maker, same_user) == []
    (alert,) = feed(
        correlator, maker, [ssh(minutes(4), "failure", user=u) for u in ("admin", "oracle")]
    )
    assert alert.rule_id == "spray"


TEMPORAL = """
title: brute then cloud login
name: hybrid
correlation:
  type: {kind}
  rules: [ssh_fail, console]
  group-by: [ip]
  timespan: 1h
  aliases:
    ip:
      ssh_fail: source.ip
      console: sourceIPAddress
"""


@pytest.mark.parametrize("kind", ["temporal", "temporal_ordered"])
def test_temporal_joins_fields_named_differently(tmp_path: Path, kind: str) -> None:
    maker = rules(tmp_path, TEMPORAL.format(kind=kind))
    correlator = Correlator(maker_rules(tmp_path))
    assert feed(correlator, maker, [ssh(minutes(1), "failure")]) == []
    assert feed(correlator, maker, [console(minutes(2), ip="198.51.100.9")]) == []
    (alert,) = feed(correlator, maker, [console(minutes(30))])
    assert alert.environment == "hybrid"
    assert alert.group == {"ip": "203.0.113.66"}
    assert {"root", "mallory"} <= set(alert.actors)


def test_temporal_ordered_needs_the_order(tmp_path: Path) -> None:
    maker = rules(tmp_path, TEMPORAL.format(kind="temporal_ordered"))
    correlator = Correlator(maker_rules(tmp_path))
    # Arrives in order, but in event time the console login came first.
    feed(correlator, maker, [ssh(minutes(10), "failure")])
    assert feed(correlator, maker, [console(minutes(5))]) == []
    unordered = Correlator(maker_rules(tmp_path))
    feed(unordered, maker, [console(minutes(20))])
    assert len(feed(unordered, maker, [ssh(minutes(10), "failure")])) == 1  # late, in order


def test_referenced_rules_alert_only_when_generated(tmp_path: Path) -> None:
    maker = rules(tmp_path, BRUTE)
    correlator = Correlator(maker_rules(tmp_path))
    assert feed(correlator, maker, [ssh(minutes(1), "failure")]) == []
    (own,) = feed(correlator, maker, [ssh(minutes(1), "success")])  # not referenced: alerts
    assert own.rule_id == "ssh_ok"


def test_a_flood_into_an_open_alert_holds_no_more_hits(tmp_path: Path) -> None:
    """Once the brute force alert is open, its window holds nothing more of the flood:
    memory, state and cost per hit stay flat, and the alert still counts every event."""
    maker = rules(tmp_path, BRUTE)
    correlator = Correlator(maker_rules(tmp_path))
    (alert,) = feed(correlator, maker, [ssh(timedelta(seconds=s), "failure") for s in range(2000)])
    assert alert.count == 2000
    assert correlator.windows.held() <= 5


@pytest.mark.parametrize("hot", [0, 1, 3])
def test_open_alerts_kept_decoded_or_not_give_the_same_alerts_and_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hot: int
) -> None:
    """Which open alerts stay decoded between rounds changes the cost only: every
    round returns the same alerts and the same state rows as with all of them decoded,
    also across a restart from the committed rows."""
    maker = rules(tmp_path, BRUTE)
    addresses = [f"198.51.100.{n}" for n in range(5)]
    rounds = [
        [ssh(timedelta(seconds=60 * r + s), "failure", ip=ip) for ip in addresses for s in (0, 7)]
        for r in range(40)
    ]

    def run() -> list[tuple[list[Any], dict[str, bytes | None]]]:
        committed = Committed()
        correlator = committed.attach(Correlator(maker_rules(tmp_path)))
        out = []
        for number, docs in enumerate(rounds):
            if number == 20:  # a restart from the committed rows
                correlator = committed.attach(Correlator(maker_rules(tmp_path)))
            alerts = feed(correlator, maker, docs)
            changes = committed.commit(correlator)
            out.append(([alert.to_json() for alert in alerts], changes))
        return out

    all_decoded = run()
    monkeypatch.setattr(correlate, "HOT_ALERTS", hot)
    monkeypatch.setattr(correlate, "HOT_ROUNDS", 2)
    assert run() == all_decoded
    assert any(alert["count"] > 5 for alerts, _ in all_decoded for alert in alerts)


def test_held_hits_of_a_correlation_no_longer_loaded_go(tmp_path: Path) -> None:
    """A restart with a correlation taken out of the rules: its held hits go at the
    first commit."""
    maker = rules(tmp_path, BRUTE)
    committed = Committed()
    before = committed.attach(Correlator(maker_rules(tmp_path)))
    feed(before, maker, [ssh(minutes(m), "failure") for m in range(3)])
    committed.commit(before)
    assert committed.hits_of("brute") == 3
    (tmp_path / "r.yml").write_text(BASE)
    after = committed.attach(Correlator(maker_rules(tmp_path)))
    feed(after, HitMaker(maker_rules(tmp_path)), [ssh(minutes(90), "failure")])
    committed.commit(after)
    assert committed.hits_of("brute") == 0
