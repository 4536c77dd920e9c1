"""What the HTTP API reads from the store (both engines): keyed pages, one event by key,
the histogram."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from schemasupport import rewind_before
from storesupport import Engine, open_for_workers
from test_timeline_store import ALL, NEWEST_FIRST, _pair, at, crafted, fill, run_job, sample_records

from daemon.logtypes import normalize_record
from daemon.process import init_worker
from daemon.store.base import EventQuery, Store
from daemon.store.keys import key_minute
from daemon.store.sqlite import SqliteStore


def histogram_total(store: Store) -> Counter[str]:
    totals: Counter[str] = Counter()
    for _, log_type, n in store.histogram(at("2000-01-01T00:00:00"), at("2100-01-01T00:00:00"), 60):
        totals[log_type] += n
    return totals


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_pages_continue_after_the_last_key(store: Store, order: str) -> None:
    """Pages of two, each after the previous page's last key, list everything once, in order."""
    fill(store)
    query = EventQuery(limit=2, order=order)  # type: ignore[arg-type]
    seen = []
    while page := store.page(query):
        seen += page
        query = replace(query, after=page[-1].key)
    names = [found.document["event"]["action"] for found in seen]
    assert names == (NEWEST_FIRST if order == "newest" else ALL)
    assert {found.source for found in seen} == {"ct_archive", "ct_prod"}
    assert {found.log_type for found in seen} == {"cloudtrail"}


def test_an_event_is_found_by_its_key(store: Store) -> None:
    """event(key) gives the listed event with its original record; an unknown key gives None."""
    fill(store)
    (listed,) = store.page(EventQuery(text="CreateUser"))
    found = store.event(listed.key)
    assert found is not None
    assert found.document["original"]["eventName"] == "CreateUser"
    assert (found.source, found.log_type) == ("ct_prod", "cloudtrail")
    assert store.event(12345) is None


def test_histogram_counts_stored_events_once_per_minute_and_log_type(store: Store) -> None:
    """Each stored event is counted in its minute; repeats are not counted again."""
    fill(store)
    fill(store)
    assert histogram_total(store) == Counter({"cloudtrail": len(ALL)})
    minutes = Counter(
        key_minute(found.key) for found in store.page(EventQuery(limit=100, order="oldest"))
    )
    first = min(minutes)
    start = datetime.fromtimestamp(first * 60, UTC)
    rows = store.histogram(start, start, 1)
    assert rows == [(start, "cloudtrail", minutes[first])]


def test_histogram_counts_events_placed_beside_a_colliding_key(store: Store) -> None:
    """Two events on one row key are both counted; re-writing them adds nothing."""
    first, second, key = _pair()
    batch = replace(crafted("syslog_auth", [first, second], key=key), log_type="syslog")
    store.write([batch])
    store.write([batch])
    assert histogram_total(store) == Counter({"syslog": 2})


def test_pruning_drops_old_minutes(engine: Engine, place: str) -> None:
    """Retention removes the counts of the events it deletes."""
    store = open_for_workers(engine, place, retention_days=30)
    try:
        store.write([run_job(store, "ct_prod", sample_records())])
        before = sum(histogram_total(store).values())
        assert before > 0
        store.prune(at("2027-06-01T00:00:00"))
        assert histogram_total(store) == Counter()
    finally:
        store.close()


def test_a_store_from_before_the_counts_gets_them_on_open(tmp_path: Path) -> None:
    """Opening a SQLite store made before the per-minute counts counts its events as CloudTrail."""
    path = tmp_path / "timeline.db"
    store = SqliteStore(path, retention_days=0, normalize=normalize_record)
    init_worker(store.dictionaries())
    fill(store)
    store.close()
    rewind_before(path, "minute_counts")
    reopened = SqliteStore(path, retention_days=0, normalize=normalize_record)
    try:
        assert histogram_total(reopened) == Counter({"cloudtrail": len(ALL)})
    finally:
        reopened.close()


def test_text_with_a_nul_character_finds_nothing_instead_of_failing(store: Store) -> None:
    """A NUL inside a search term is a separator, not an FTS5 syntax error."""
    fill(store)
    assert store.page(EventQuery(text="\x00")) == []
    assert [
        f.document["event"]["action"] for f in store.page(EventQuery(text="Create\x00User"))
    ] == []
    assert len(store.page(EventQuery(text="CreateUser\x00"))) == 1
