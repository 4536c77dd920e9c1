"""Events whose row key another event holds, on SQLite and PostgreSQL: stored in their
millisecond whatever their number, found again as repeats in later writes, after a
restart and after an upgrade from the version that probed key after key.

The rows are built by hand (``crafted``): forcing many events onto one key is the
worst case a flood of syslog lines with one time stamp makes.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from storesupport import Engine, behind, crafted, open_before, open_for_workers, run

from daemon.model import AuditEvent
from daemon.process import Processed
from daemon.store import pgschema, placing
from daemon.store.base import EventQuery, Store, StoreUnavailableError
from daemon.store.keys import HASH_BITS, event_hash, key_ceiling, key_floor, key_time, row_key
from daemon.store.reads import as_format

MOMENT = datetime(2026, 11, 20, 5, 0, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
MOMENT_MS = key_floor(MOMENT) >> HASH_BITS
TABLES = ("displaced", "displaced_recent")
# Ids whose hashes share their 20 low bits (found once by trying): the first pair
# has one natural key, the second pair's natural key is the last of its millisecond.
PAIR = ("old-pair-1882", "old-pair-2035")
EDGE = ("old-edge-716983", "old-edge-844371")


ONE_FILE_ONE_WRITER = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
"""Several writers at once: PostgreSQL only (one SQLite file has one writer)."""
ONE_WRITER = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
"""Crowded milliseconds and the table of recent displaced rows: SQLite only."""


def lines(prefix: str, count: int, moment: datetime = MOMENT) -> list[AuditEvent]:
    """Syslog-like events that all carry one time stamp."""
    return [
        AuditEvent(
            timestamp=moment,
            id=f"{prefix}-{n}",
            dataset="system.syslog",
            action="line",
            message=f"{prefix} line {n}",
        )
        for n in range(count)
    ]


def one(event_id: str, moment: datetime = MOMENT) -> AuditEvent:
    return AuditEvent(timestamp=moment, id=event_id, dataset="system.syslog", message=event_id)


def stored_keys(engine: Engine, place: str) -> list[int]:
    return [int(key) for (key,) in run(engine, place, "SELECT id FROM events ORDER BY id")]


def insert_rows(engine: Engine, place: str, rows: list[tuple[int, int, bytes]]) -> None:
    """(key, eid, doc) rows put straight into the events table, as another version left them."""
    search = "" if engine.name == "sqlite" else ", ''::tsvector"
    column = "" if engine.name == "sqlite" else ", search"
    sql = (
        f"INSERT INTO events (id, eid, source, codec, doc{column})"
        f" VALUES (?, ?, 'syslog', 0, ?{search})"
    )
    with behind(engine, place) as db:
        for key, eid, doc in rows:
            if engine.name == "sqlite":
                db.execute(sql, (key, eid, doc))
            else:
                pgschema.create_partition(db, key)
                db.execute(as_format(sql), (key, eid, doc))


def fill_millisecond(engine: Engine, place: str, moment: datetime) -> None:
    """Every key of ``moment``'s millisecond held by a filler row."""
    low, high = key_floor(moment), key_ceiling(moment)
    if engine.name == "sqlite":
        sql = (
            "WITH RECURSIVE k(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM k WHERE x < ?)"
            " INSERT INTO events (id, eid, source, codec, doc) SELECT x, x, 'filler', 0, x''"
            " FROM k"
        )
    else:
        sql = (
            "INSERT INTO events (id, eid, source, codec, doc, search)"
            " SELECT x, x, 'filler', 0, '', ''::tsvector FROM generate_series(?::bigint, ?) x"
        )
    run(engine, place, sql, (low, high))


def in_millisecond(key: int, moment: datetime) -> bool:
    return key_floor(moment) <= key <= key_ceiling(moment)


def test_burst_on_one_key_across_writes_stays_in_its_millisecond(store: Store) -> None:
    """Events forced onto one key, over several writes, are all stored in that millisecond
    and found as repeats when read again."""
    events = lines("burst", 1200)
    key = row_key(MOMENT, event_hash(events[0].id))
    for start in range(0, 1200, 300):
        result = store.write([crafted("syslog", events[start : start + 300], key=key)])
        assert (result.stored, result.duplicates) == (300, 0)
    found = store.page(EventQuery(limit=2000, since=MOMENT, until=MOMENT))
    assert len(found) == 1200
    assert all(in_millisecond(f.key, MOMENT) for f in found)
    again = store.write([crafted("syslog", events[::-1], key=key)])
    assert (again.stored, again.duplicates) == (0, 1200)
    assert store.count() == 1200


def test_displaced_event_read_again_after_a_restart_is_stored_once(
    store: Store, engine: Engine, place: str
) -> None:
    """An event stored away from its natural key is a repeat for a store opened again."""
    first, second, third = lines("restart", 3)
    key = row_key(MOMENT, event_hash(first.id))
    assert store.write([crafted("syslog", [first, second], key=key)]).stored == 2
    store.close()
    reopened = open_for_workers(engine, place)
    try:
        alone = reopened.write([crafted("syslog", [second], key=key)])
        assert (alone.stored, alone.duplicates) == (0, 1)
        mixed = reopened.write([crafted("syslog", [third, second, first], key=key)])
        assert (mixed.stored, mixed.duplicates) == (1, 2)
        assert reopened.count() == 3
    finally:
        reopened.close()


def test_natural_and_displaced_repeats_mixed_in_one_write(store: Store) -> None:
    """A write of repeats on their own keys, repeats stored elsewhere and new events on a
    crowded key counts each rightly, for each source."""
    plain = lines("plain", 3, MOMENT + MS)
    crowded = lines("crowded", 4)
    key = row_key(MOMENT, event_hash(crowded[0].id))
    first = store.write([crafted("syslog_a", plain[:2]), crafted("syslog_a", crowded[:3], key=key)])
    assert (first.stored, first.duplicates) == (5, 0)
    second = store.write(
        [
            crafted("syslog_b", [plain[1], plain[2]]),
            crafted(
                "syslog_b", [crowded[2], crowded[1], crowded[3], crowded[0], crowded[3]], key=key
            ),
        ]
    )
    assert second.stored_by_source == {"syslog_b": 2}
    assert second.duplicates_by_source == {"syslog_b": 5}
    assert store.count() == 7
    texts = {doc["message"] for doc in store.search(EventQuery(text="crowded", limit=10))}
    assert texts == {f"crowded line {n}" for n in range(4)}


def test_displaced_events_keep_their_minute_in_the_histogram(store: Store) -> None:
    """The minute counts include events stored away from their natural key."""
    events = lines("minute", 50)
    store.write([crafted("syslog", events, key=row_key(MOMENT, event_hash(events[0].id)))])
    counts = store.histogram(MOMENT, MOMENT, 1)
    assert [(when, n) for when, _, n in counts] == [(MOMENT, 50)]


def test_prune_forgets_the_displaced_events_it_deletes(engine: Engine, place: str) -> None:
    """Retention takes the displaced events' records, marks and crowds with the events."""
    # A century of retention: the write keeps MOMENT whatever day the suite runs.
    store = engine.open(place, retention_days=36500)
    try:
        events = lines("pruned", 20)
        written = store.write([crafted("syslog", events, key=row_key(MOMENT, 0))])
        assert written.stored == 20
        # SQLite crowds the millisecond and records its one event on its natural key too.
        recorded = 20 if engine.name == "sqlite" else 19
        assert run(engine, place, "SELECT count(*) FROM displaced_all") == [(recorded,)]
        assert store.prune(MOMENT + timedelta(days=36510)) == 20
    finally:
        store.close()
    assert run(engine, place, "SELECT count(*) FROM displaced_all") == [(0,)]
    assert run(engine, place, "SELECT count(*) FROM fill_marks") == [(0,)]
    if engine.name == "sqlite":
        assert run(engine, place, "SELECT count(*) FROM crowds") == [(0,)]


def test_full_millisecond_spills_into_the_next(store: Store, engine: Engine, place: str) -> None:
    """With all 2**20 keys of a millisecond held, its next events go to the following
    millisecond, keep their order there and are still found as repeats."""
    store.write([crafted("syslog", [one("month-opener", MOMENT - timedelta(days=1))])])
    fill_millisecond(engine, place, MOMENT)
    events = lines("overflow", 3)
    key = row_key(MOMENT, event_hash(events[0].id))
    assert store.write([crafted("syslog", events, key=key)]).stored == 3
    later = store.write([crafted("syslog", lines("later", 2), key=key)])
    assert later.stored == 2
    spilled = store.page(EventQuery(text="line", since=MOMENT, until=MOMENT + MS, limit=10))
    assert len(spilled) == 5
    assert {key_time(f.key) for f in spilled} == {MOMENT + MS}
    again = store.write([crafted("syslog", events, key=key)])
    assert (again.stored, again.duplicates) == (0, 3)
    assert [(when, n) for when, _, n in store.histogram(MOMENT, MOMENT, 1)] == [(MOMENT, 5)]


def test_crowded_millisecond_finds_every_repeat(store: Store, engine: Engine, place: str) -> None:
    """Once a millisecond is crowded, its new events are stored once, and their repeats
    are found whether they sit on their natural key or were displaced, in one write with
    others and after a restart."""
    early = lines("early", 30)
    forced = lines("forced", 3)
    key = row_key(MOMENT, 0)
    first = store.write([crafted("syslog", early), crafted("syslog", forced, key=key)])
    assert (first.stored, first.duplicates) == (33, 0)
    late = lines("late", 40)
    second = store.write(
        [
            crafted("syslog", late),
            crafted("syslog", early[:10]),
            crafted("syslog", forced, key=key),
            crafted("syslog", late[:5]),
        ]
    )
    assert (second.stored, second.duplicates) == (40, 18)
    store.close()
    reopened = open_for_workers(engine, place)
    try:
        again = reopened.write([crafted("syslog", late[::-1] + early)])
        assert (again.stored, again.duplicates) == (0, 70)
        assert reopened.count() == 73
        found = reopened.search(EventQuery(text="late", limit=100))
        assert {doc["message"] for doc in found} == {f"late line {n}" for n in range(40)}
        assert [n for _, _, n in reopened.histogram(MOMENT, MOMENT, 1)] == [73]
    finally:
        reopened.close()
    keys = stored_keys(engine, place)
    assert len(keys) == len(set(keys)) == 73
    assert all(in_millisecond(k, MOMENT) for k in keys)


def test_crowded_millisecond_grows_at_its_top(store: Store, engine: Engine, place: str) -> None:
    """With one writer (SQLite), the new events of a crowded millisecond go on its highest
    free keys, side by side, not on natural keys spread over it; PostgreSQL, with several
    writers, keeps natural keys."""
    floor, top = key_floor(MOMENT), key_ceiling(MOMENT)
    store.write([crafted("syslog", lines("forced", 2), key=floor)])
    late = lines("late", 50)
    assert store.write([crafted("syslog", late)]).stored == 50
    keys = set(stored_keys(engine, place))
    natural = {row_key(MOMENT, event_hash(event.id)) for event in late}
    if engine.name == "sqlite":
        assert keys == {floor, *range(top - 50, top + 1)}
    else:
        assert keys == {floor, top, *natural}


def retried(store: Store, batch: Processed, attempts: int = 20) -> int:
    """Events stored by ``batch``, written again after a rolled-back attempt."""
    for _ in range(attempts - 1):
        with contextlib.suppress(StoreUnavailableError):
            return store.write([batch]).stored
    return store.write([batch]).stored


@ONE_FILE_ONE_WRITER
def test_two_writers_on_one_millisecond_store_every_event_once(engine: Engine, place: str) -> None:
    """Two stores on one database (two daemons) at once: one fills the top keys of a
    millisecond, the other crowds a burst onto one key, whose free keys are handed out from
    the top.  Every event is stored once; a key the other took first is chosen again, and a
    write that loses a deadlock is retried, as the pipeline does."""
    top = key_ceiling(MOMENT)
    pinned = lines("pinned", 600)
    burst = lines("burst", 600)
    writes = {
        "pinned": [
            processed_of([crafted("pinned", [e], key=top - n) for n, e in enumerate(part, start)])
            for start in range(0, 600, 50)
            for part in [pinned[start : start + 50]]
        ],
        "burst": [
            crafted("burst", burst[start : start + 50], key=row_key(MOMENT, 0))
            for start in range(0, 600, 50)
        ],
    }
    stores = {name: open_for_workers(engine, place) for name in writes}
    start = threading.Barrier(len(stores))
    stored = dict.fromkeys(writes, 0)

    def write(name: str) -> None:
        start.wait()
        for batch in writes[name]:
            stored[name] += retried(stores[name], batch)

    threads = [threading.Thread(target=write, args=(name,)) for name in writes]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert stored == {"pinned": 600, "burst": 600}
        again = [retried(stores["pinned"], batch) for batch in writes["burst"] + writes["pinned"]]
        assert sum(again) == 0
    finally:
        for opened in stores.values():
            opened.close()
    keys = stored_keys(engine, place)
    assert len(keys) == len(set(keys)) == 1200
    assert all(in_millisecond(k, MOMENT) for k in keys)


@ONE_FILE_ONE_WRITER
def test_a_key_another_writer_took_meanwhile_is_chosen_again(
    store: Store, engine: Engine, place: str
) -> None:
    """Free keys taken by another daemon's transaction, uncommitted when the write looked,
    are given up once it commits, and the events go on further keys."""
    store.write([crafted("syslog", [one("month-opener", MOMENT - timedelta(days=1))])])
    top = key_ceiling(MOMENT)
    burst = lines("burst", 20)
    results: list[int] = []
    with psycopg.connect(place) as other:
        other.execute(
            "INSERT INTO events (id, eid, source, codec, doc, search)"
            " SELECT x, x, 'other', 0, '', ''::tsvector FROM generate_series(%s::bigint, %s) x",
            (top - 29, top),
        )
        writer = threading.Thread(
            target=lambda: results.append(
                store.write([crafted("burst", burst, key=row_key(MOMENT, 0))]).stored
            )
        )
        writer.start()
        writer.join(timeout=0.5)
        assert writer.is_alive(), "the write must wait for the other transaction"
        other.commit()
        writer.join()
    assert results == [20]
    keys = stored_keys(engine, place)
    assert len(keys) == len(set(keys)) == 51


def processed_of(parts: list[Processed]) -> Processed:
    """One batch of the rows of ``parts`` (each crafted with a key of its own)."""
    out = Processed(source=parts[0].source, origin="crafted")
    for part in parts:
        out.rows.extend(part.rows)
        out.texts.extend(part.texts)
    return out


@pytest.fixture
def older_store(engine: Engine, place: str) -> str:
    """A store as the release before the displaced table left it, without events."""
    open_before(engine, place, "displaced")
    return place


def test_upgraded_store_finds_the_events_older_versions_moved(
    engine: Engine, older_store: str
) -> None:
    """Events the older version put on the key after their natural one (also into the next
    millisecond) are repeats once the store is upgraded; new events still find room."""
    events = [one(event_id) for event_id in (*PAIR, *EDGE)]
    rows = crafted("syslog", events).rows
    (pair_key, eid_a, _, doc_a), (_, eid_b, _, doc_b) = rows[:2]
    (edge_key, eid_c, _, doc_c), (_, eid_d, _, doc_d) = rows[2:]
    assert edge_key == key_ceiling(MOMENT)
    insert_rows(
        engine,
        older_store,
        [
            (pair_key, eid_a, doc_a),
            (pair_key + 1, eid_b, doc_b),
            (edge_key, eid_c, doc_c),
            (edge_key + 1, eid_d, doc_d),
        ],
    )
    store = open_for_workers(engine, older_store)
    try:
        again = store.write([crafted("syslog", events[::-1])])
        assert (again.stored, again.duplicates) == (0, 4)
        newcomer = lines("newcomer", 1)
        assert store.write([crafted("syslog", newcomer, key=pair_key)]).stored == 1
        assert store.count() == 5
    finally:
        store.close()
    keys = stored_keys(engine, older_store)
    assert keys[-1] == edge_key + 1
    assert sum(in_millisecond(key, MOMENT) for key in keys) == 4
    assert all(key >> HASH_BITS == pair_key >> HASH_BITS for key in keys[:4])


@ONE_WRITER
def test_millisecond_marked_before_the_upgrade_keeps_its_events_once(
    engine: Engine, place: str
) -> None:
    """A millisecond the release before crowds marked (events on natural keys, one
    displaced) is crowded at its next collision; its events, read again before and
    after that, are repeats, and its new events are stored once."""
    open_before(engine, place, "crowds")
    early = crafted("syslog", lines("early", 30)).rows
    forced = crafted("syslog", lines("forced", 2), key=key_floor(MOMENT)).rows
    top = key_ceiling(MOMENT)
    insert_rows(engine, place, [(k, eid, doc) for k, eid, _, doc in early + forced[:1]])
    insert_rows(engine, place, [(top, forced[1][1], forced[1][3])])
    run(engine, place, "INSERT INTO displaced VALUES (?, ?, ?)", (forced[1][0], forced[1][1], top))
    run(engine, place, "INSERT INTO fill_marks VALUES (?, ?)", (MOMENT_MS, top))
    store = open_for_workers(engine, place)
    try:
        again = store.write([crafted("syslog", lines("early", 30))])
        assert (again.stored, again.duplicates) == (0, 30)
        burst = lines("burst", 40)
        crowding = store.write([crafted("syslog", burst[:20], key=key_floor(MOMENT))])
        assert (crowding.stored, crowding.duplicates) == (20, 0)
        assert run(engine, place, "SELECT ms FROM crowds") == [(MOMENT_MS,)]
        everything = [
            crafted("syslog", lines("early", 30)),
            crafted("syslog", lines("forced", 2), key=key_floor(MOMENT)),
            crafted("syslog", burst, key=key_floor(MOMENT)),
        ]
        last = store.write(everything)
        assert (last.stored, last.duplicates) == (20, 52)
        assert store.count() == 72
    finally:
        store.close()
    keys = stored_keys(engine, place)
    assert len(keys) == len(set(keys)) == 72


@ONE_WRITER
def test_recent_displaced_rows_move_into_the_big_table_and_are_still_found(
    engine: Engine, place: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once ``displaced_recent`` is full its rows move into ``displaced`` in the write's
    transaction; events recorded in either are repeats, also after a restart."""
    monkeypatch.setattr(placing, "RECENT_ROWS", 50)
    events = lines("moved", 240)
    key = row_key(MOMENT, 0)
    store = open_for_workers(engine, place)
    try:
        for start in range(0, 240, 40):
            assert (
                store.write([crafted("syslog", events[start : start + 40], key=key)]).stored == 40
            )
    finally:
        store.close()
    big, recent = (run(engine, place, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES)
    # One event on its natural key, recorded when the millisecond was crowded, and 239
    # displaced: moved whenever the recent table reached 50 (after writes 2 and 4 and 6).
    assert (big, recent) == (240, 0)
    reopened = open_for_workers(engine, place)
    try:
        tail = reopened.write([crafted("syslog", lines("tail", 10), key=key)])
        assert (tail.stored, run(engine, place, f"SELECT count(*) FROM {TABLES[1]}")) == (
            10,
            [(10,)],
        )
        again = reopened.write([crafted("syslog", events[::-1] + lines("tail", 10), key=key)])
        assert (again.stored, again.duplicates) == (0, 250)
    finally:
        reopened.close()
    keys = stored_keys(engine, place)
    assert len(keys) == len(set(keys)) == 250
