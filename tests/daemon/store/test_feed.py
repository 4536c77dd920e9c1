"""The correlator's side of the store (both engines): the feed each write appends in
commit order, and a round's commit of place, state, alerts, entries and outbox rows."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "delivery"))

from deliverysupport import make_alert
from storesupport import Engine, crafted, open_before, run

from connectors.base import RawBatch
from daemon.correlator.entries import alert_entries
from daemon.model import AuditEvent
from daemon.normalize import Limits
from daemon.process import Job, process
from daemon.store.alert_events import SOURCE as ALERT_SOURCE
from daemon.store.base import EventQuery, Store
from daemon.store.keys import event_hash
from daemon.store.units import Batch, FeedMovedError, Round

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def event(n: int) -> AuditEvent:
    return AuditEvent(
        id=f"ev-{n}",
        timestamp=T0 + timedelta(seconds=n),
        dataset="system.auth",
        action="ssh_login",
        message=f"event {n}",
    )


def fed(source: str, *numbers: int) -> Batch:
    """A batch of events ``numbers``, each with one feed item naming it."""
    batch = crafted(source, [event(n) for n in numbers])
    batch.feed = [(event_hash(f"ev-{n}"), orjson.dumps({"n": n})) for n in numbers]
    return batch


def items(store: Store, position: int = 0) -> list[list[int]]:
    return [
        [item["n"] for item in orjson.loads(entry)] for _, entry in store.feed_after(position, 50)
    ]


def test_each_write_feeds_the_items_of_the_events_it_stored_first(store: Store) -> None:
    """One row per write that stored events with items, in commit order; an event read
    again (here or in the same write) is not fed again; a write without items adds none."""
    store.write([fed("a", 1, 2)])
    store.write([crafted("b", [event(3)])])
    store.write([fed("a", 2, 4), fed("c", 4, 5)])
    store.write([fed("a", 1)])
    assert items(store) == [[1, 2], [4, 5]]
    first, second = (seq for seq, _ in store.feed_after(0, 50))
    assert first < second
    assert items(store, first) == [[4, 5]]


def test_a_round_commits_place_state_alerts_entries_and_outbox_together(store: Store) -> None:
    store.write([fed("a", 1)])
    ((seq, _),) = store.feed_after(0, 10)
    alert = make_alert(1)
    store.commit_round(
        Round(
            after=0,
            position=seq,
            state={"window\x1fr\x1fg": b"[1]", "gone": None},
            alerts=[alert],
            entries=alert_entries([alert]),
            deliveries=[(alert, "chat")],
        )
    )
    assert store.correlation_state() == (seq, {"window\x1fr\x1fg": b"[1]"})
    assert store.alert(alert.id) == alert
    assert [row.output for row in store.alert_deliveries(alert.id)] == ["chat"]
    (entry,) = store.search(EventQuery(source=ALERT_SOURCE, since=T0 - timedelta(days=1)))
    assert entry["event"]["id"] == f"{alert.id}-{alert.count}"
    store.commit_round(Round(after=seq, position=seq, state={"window\x1fr\x1fg": None}))
    assert store.correlation_state() == (seq, {})
    assert store.prune_feed() == 1
    assert store.feed_after(0, 10) == []


def test_held_hits_are_read_by_group_and_go_by_name_by_time_and_by_correlation(
    store: Store,
) -> None:
    """What correlation groups hold commits with the round, is read back per group,
    and goes when a round lets a hit go, when its correlation's hits expire, and when
    its correlation is no longer loaded."""
    held = [
        ("brute", "ip=1", "r\x1fev-1", 1_000, b"h1"),
        ("brute", "ip=1", "r\x1fev-2", 2_000, b"h2"),
        ("brute", "ip=2", "r\x1fev-3", 3_000, b"h3"),
        ("chain", "ip=1", "r\x1fev-1", 1_000, b"c1"),
        ("gone", "ip=1", "r\x1fev-1", 9_000, b"g1"),
    ]
    store.commit_round(Round(after=0, position=0, held=held))
    groups = [("brute", "ip=1"), ("brute", "ip=2"), ("chain", "ip=1"), ("brute", "ip=9")]
    assert {key: sorted(hits) for key, hits in store.held_hits(groups).items()} == {
        ("brute", "ip=1"): [b"h1", b"h2"],
        ("brute", "ip=2"): [b"h3"],
        ("chain", "ip=1"): [b"c1"],
    }
    store.commit_round(
        Round(
            after=0,
            position=0,
            held=[("brute", "ip=1", "r\x1fev-2", 2_000, None)],
            expired={"brute": 3_000, "chain": 1_000},
            correlations=["brute", "chain"],
        )
    )
    assert store.held_hits([*groups, ("gone", "ip=1")]) == {
        ("brute", "ip=2"): [b"h3"],  # ip=1: one let go, one expired (before 3,000 µs)
        ("chain", "ip=1"): [b"c1"],  # held from 1,000 µs: not before it
    }


def test_an_upgraded_store_holds_the_window_rows_an_older_version_kept(
    engine: Engine, place: str
) -> None:
    """Window state rows of the release before ``held_hits`` become held hits of their
    group, with their event time; the other state rows stay."""
    open_before(engine, place, "held_hits")
    hit = {"rule": "ssh_fail", "evidence": {"id": "ev-1", "@timestamp": "2026-11-20T09:00:01.5Z"}}
    rows = {
        orjson.dumps(["window", "brute", "source.ip=192.0.2.1", "ssh_fail", "ev-1"]).decode(): (
            orjson.dumps(hit)
        ),
        '["watermark","s"]': b"2026-11-20T09:00:01.500000+00:00",
    }
    for key, value in rows.items():
        run(engine, place, "INSERT INTO correlator_state (key, value) VALUES (?, ?)", (key, value))
    store = engine.open(place)
    try:
        assert store.correlation_state() == (0, {'["watermark","s"]': rows['["watermark","s"]']})
        group = ("brute", "source.ip=192.0.2.1")
        assert store.held_hits([group]) == {group: [orjson.dumps(hit)]}
        at = int((T0 + timedelta(seconds=1.5)).timestamp() * 1_000_000)
        store.commit_round(Round(after=0, position=0, expired={"brute": at}))
        assert store.held_hits([group]) == {group: [orjson.dumps(hit)]}
        store.commit_round(Round(after=0, position=0, expired={"brute": at + 1}))
        assert store.held_hits([group]) == {}
    finally:
        store.close()


def test_a_round_from_a_place_another_correlator_left_commits_nothing(store: Store) -> None:
    """Two correlators on one store (a former cluster leader, a backfill beside a running
    daemon): the one whose starting place is no longer the stored one fails whole."""
    store.write([fed("a", 1)])
    store.write([fed("a", 2)])
    first, second = (seq for seq, _ in store.feed_after(0, 10))
    store.commit_round(Round(after=0, position=first, state={"k": b"1"}))
    alert = make_alert(2)
    stale = Round(after=0, position=second, state={"k": b"2"}, alerts=[alert])
    with pytest.raises(FeedMovedError):
        store.commit_round(stale)
    assert store.correlation_state() == (first, {"k": b"1"})
    assert store.alert(alert.id) is None


def test_the_change_record_versions_a_write_keeps_are_fed_once(store: Store) -> None:
    """After the items of the events, each version the change book kept; a version kept
    before is not fed again."""
    record = {
        "id": "CHG1",
        "title": "t",
        "state": "approved",
        "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:30:00Z"},
    }
    payload = orjson.dumps(record)
    job = Job("itsm", RawBatch("change", "chg.json", payload), store.codec, Limits())
    store.write([process(job)])
    store.write([process(job)])
    ((_, entry),) = store.feed_after(0, 10)
    (item,) = orjson.loads(entry)
    assert item["change"]["id"] == "CHG1"
    assert item["change"]["state"] == "approved"
