"""Change records on the timeline and in the store's change book, on both engines
(the ``store`` fixture comes from ``storesupport`` through this folder's conftest)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.base import RawBatch
from daemon.normalize import Limits
from daemon.process import Job, Processed, process
from daemon.store.base import EventQuery, Store
from daemon.store.keys import key_ceiling, key_floor


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "CHG0031001",
        "title": "Stop and start the batch host",
        "state": "approved",
        "requested_by": "dave",
        "implementers": ["alice"],
        "window": {"start": "2026-11-20T09:00:00", "end": "2026-11-20T09:30:00"},
        "scope": {"actions": ["ec2:StopInstances", "ec2:StartInstances"]},
    }
    base.update(changes)
    return base


def run(store: Store, payload: Any, *, zone: str = "UTC") -> Processed:
    batch = RawBatch("change", "changes/chg.json", orjson.dumps(payload))
    return process(Job("changes", batch, store.codec, Limits(timezone=zone)))


def timeline(store: Store) -> list[dict[str, Any]]:
    return store.search(EventQuery(dataset="change", order="oldest", limit=50))


def test_an_approved_record_makes_a_version_and_its_window_events(store: Store) -> None:
    """The version and the window's opening and closing appear, at their times."""
    written = store.write([run(store, record(updated="2026-11-19T12:00:00Z"))])
    assert written.stored == 3
    docs = timeline(store)
    assert [(d["@timestamp"], d["event"]["action"]) for d in docs] == [
        ("2026-11-19T12:00:00Z", "change_recorded"),
        ("2026-11-20T09:00:00Z", "change_window_opened"),
        ("2026-11-20T09:30:00Z", "change_window_closed"),
    ]
    assert docs[1]["message"] == (
        "CHG0031001 window opened: Stop and start the batch host (implementers: alice)"
    )
    assert docs[0]["change"]["state"] == "approved"
    assert docs[0]["event"]["dataset"] == "change"


def test_times_without_a_zone_use_the_daemon_time_zone(store: Store) -> None:
    """09:00 in Tokyo is 00:00 UTC."""
    store.write([run(store, record(), zone="Asia/Tokyo")])
    opened = [d for d in timeline(store) if d["event"]["action"] == "change_window_opened"]
    assert opened[0]["@timestamp"] == "2026-11-20T00:00:00Z"
    (current,) = store.change_records()
    assert current["window"] == {"start": "2026-11-20T00:00:00Z", "end": "2026-11-20T00:30:00Z"}


def test_a_draft_has_no_window_events(store: Store) -> None:
    """Only records that authorize work open a window on the timeline."""
    store.write([run(store, record(state="draft"))])
    assert [d["event"]["action"] for d in timeline(store)] == ["change_recorded"]


def test_rereading_a_record_stores_nothing_twice(store: Store) -> None:
    """The same content read again (another ingest time) is a duplicate."""
    store.write([run(store, [record()])])
    again = store.write([run(store, [record()])])
    assert again.stored == 0
    assert again.duplicates == 3
    assert len(timeline(store)) == 3
    assert len(store.change_history("CHG0031001")) == 1


def test_a_new_version_replaces_the_current_one_and_keeps_history(store: Store) -> None:
    """History holds every version; the current one is the latest."""
    store.write([run(store, record(updated="2026-11-19T12:00:00Z"))])
    store.write([run(store, record(state="completed", updated="2026-11-20T09:40:00Z"))])
    store.write([run(store, record(state="implementing", updated="2026-11-20T09:01:00Z"))])
    (current,) = store.change_records()
    assert current["state"] == "completed"
    history = store.change_history("CHG0031001")
    assert [h["state"] for h in history] == ["approved", "completed", "implementing"]
    # One window, whichever versions repeat it.
    actions = [d["event"]["action"] for d in timeline(store)]
    assert actions.count("change_window_opened") == 1
    assert actions.count("change_recorded") == 3


def test_version_numbers_win_over_update_times(store: Store) -> None:
    """A record with a higher version number stays current even if updated earlier."""
    store.write([run(store, record(version=5, state="approved", updated="2026-11-19T12:00Z"))])
    store.write([run(store, record(version=4, state="requested", updated="2026-11-19T13:00Z"))])
    (current,) = store.change_records()
    assert current["state"] == "approved"


def test_records_are_found_by_window(store: Store) -> None:
    """The coverage query reads only records whose window overlaps its range."""
    store.write(
        [
            run(
                store,
                [
                    record(),
                    record(
                        id="CHG2", window={"start": "2026-12-01T00:00Z", "end": "2026-12-01T01:00Z"}
                    ),
                ],
            )
        ]
    )
    since = datetime(2026, 11, 20, 9, 10, tzinfo=UTC)
    until = datetime(2026, 11, 20, 9, 20, tzinfo=UTC)
    assert [r["id"] for r in store.change_records(since=since, until=until)] == ["CHG0031001"]
    assert [r["id"] for r in store.change_records()] == ["CHG0031001", "CHG2"]


def test_a_bad_record_is_quarantined_and_the_others_kept(store: Store) -> None:
    """Missing id, missing window, end before start, unknown state: each quarantined
    with its reason; the good record in the same file still lands."""
    bad = [
        {k: v for k, v in record().items() if k != "id"},
        {k: v for k, v in record(id="CHG3").items() if k != "window"},
        record(id="CHG4", window={"start": "2026-11-20T10:00Z", "end": "2026-11-20T09:00Z"}),
        record(id="CHG5", state="finished"),
    ]
    written = store.write([run(store, [*bad, record(id="CHG6")])])
    assert written.quarantined == 4
    reasons = sorted(q.reason for q in store.quarantine())
    assert "change record 'CHG3': missing window (an object with start and end)" in reasons
    assert any("window ends" in r and "CHG4" in r for r in reasons)
    assert any("unknown state 'finished'" in r for r in reasons)
    assert any(r.startswith("change record: missing id") for r in reasons)
    assert [r["id"] for r in store.change_records()] == ["CHG6"]


def test_a_payload_that_is_not_json_is_quarantined_whole(store: Store) -> None:
    """Garbage in a change file is kept for inspection, never fatal."""
    batch = RawBatch("change", "changes/broken.json", b"{not json")
    written = store.write([process(Job("changes", batch, store.codec, Limits()))])
    assert written.quarantined == 1
    assert "not JSON" in store.quarantine()[0].reason


def test_a_ranged_backfill_keeps_the_record_and_only_ranges_its_events(
    store: Store,
) -> None:
    """backfill --since/--until drops events outside the range, never the record itself."""
    batch = RawBatch("change", "changes/chg.json", orjson.dumps(record()))
    low = key_floor(datetime(2026, 11, 20, 9, 20, tzinfo=UTC))
    high = key_ceiling(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    job = Job("changes", batch, store.codec, Limits(), key_min=low, key_max=high)
    store.write([process(job)])
    assert [r["id"] for r in store.change_records()] == ["CHG0031001"]
    assert [d["event"]["action"] for d in timeline(store)] == ["change_window_closed"]
