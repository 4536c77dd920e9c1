"""The timeline store, on SQLite and PostgreSQL: dedup, atomic checkpoints, search,
quarantine, retention, codecs.  Fixtures (``conftest.py``) run each test on both engines;
the tests of SQLite internals at the end use a SQLite store of their own.

Events reach the store the way they do in the daemon: a CloudTrail file body
goes through ``daemon.process.process`` (decode, normalize, encode) and the
resulting ``Processed`` batch is written.  Only the key-collision tests craft
rows by hand, since a real collision needs two ids with the same 20 hash bits
in the same millisecond.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from storesupport import Engine, crafted, open_for_workers

from connectors.base import Checkpoint, RawBatch
from daemon.logtypes import normalize_record
from daemon.model import AuditEvent
from daemon.normalize import Limits, cloudtrail
from daemon.process import (
    SAMPLES_PER_BATCH,
    SAMPLES_SHARE,
    Job,
    Processed,
    init_worker,
    process,
)
from daemon.store import codec as codecs
from daemon.store.base import EventQuery, Store
from daemon.store.keys import event_hash, row_key
from daemon.store.sqlite import SqliteStore

SAMPLES = Path(__file__).parent / "samples"
JSON = dict[str, Any]

# The sample file's records by event name, oldest first (each name occurs once).
OCTOBER = ["DescribeRegions", "StopInstances"]
NOVEMBER = [
    "CreateUser",
    "AttachRolePolicy",
    "ConsoleLogin",
    "DescribeInstances",
    "GenerateDataKey",
    "GetBucketPolicy",
]
ALL = OCTOBER + NOVEMBER
NEWEST_FIRST = ALL[::-1]


def sample_records() -> list[JSON]:
    """The real-format CloudTrail records of ``samples/cloudtrail_timeline.json``."""
    records: list[JSON] = orjson.loads((SAMPLES / "cloudtrail_timeline.json").read_bytes())[
        "Records"
    ]
    return records


def by_name(*names: str) -> list[JSON]:
    wanted = set(names)
    return [r for r in sample_records() if r["eventName"] in wanted]


def file_body(records: list[JSON]) -> bytes:
    return orjson.dumps({"Records": records})


def run_job(
    store: Store,
    source: str,
    records: list[JSON] | None = None,
    *,
    payload: bytes | None = None,
    origin: str = "AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/20/file.json.gz",
    checkpoints: list[Checkpoint] | None = None,
    error: str | None = None,
) -> Processed:
    """Decode, normalize and encode one file body as the pipeline's worker does."""
    body = payload if payload is not None else file_body(records or [])
    batch = RawBatch("cloudtrail", origin, body, checkpoints or [], error=error)
    job = Job(source, batch, store.codec, Limits(), want_samples=store.wants_samples)
    return process(job)


def actions(docs: list[JSON]) -> list[str]:
    return [doc["event"]["action"] for doc in docs]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fill(store: Store) -> Store:
    """Store the samples: October ones read by ``ct_archive``, November ones by ``ct_prod``."""
    store.write(
        [
            run_job(store, "ct_archive", by_name(*OCTOBER)),
            run_job(store, "ct_prod", by_name(*NOVEMBER)),
        ]
    )
    return store


@pytest.fixture(scope="module")
def timeline_place(engine: Engine) -> str:
    return engine.place()


@pytest.fixture(scope="module")
def timeline(engine: Engine, timeline_place: str) -> Iterator[Store]:
    """The filled store shared by tests that only read it."""
    opened = open_for_workers(engine, timeline_place)
    yield fill(opened)
    opened.close()


@pytest.fixture
def filled(store: Store) -> Store:
    """A filled store of this test's own, for tests that change it."""
    return fill(store)


# -- dedup ---------------------------------------------------------------------


def test_batch_written_twice_is_stored_once(store: Store) -> None:
    """Writing the same processed batch again stores nothing and counts duplicates."""
    batch = run_job(store, "ct_prod", sample_records())
    first = store.write([batch])
    second = store.write([batch])
    assert (first.stored, first.duplicates) == (8, 0)
    assert (second.stored, second.duplicates) == (0, 8)
    assert store.count() == 8


def test_same_events_in_two_batches_are_stored_once(store: Store) -> None:
    """An event read again from another file (or source) is a duplicate, in one write or two."""
    records = sample_records()
    one = run_job(store, "ct_prod", records[:5], origin="a.json.gz")
    two = run_job(store, "ct_org", records[3:], origin="b.json.gz")
    result = store.write([one, two])
    assert (result.stored, result.duplicates) == (8, 2)
    again = store.write([run_job(store, "ct_prod", records, origin="c.json.gz")])
    assert (again.stored, again.duplicates) == (0, 8)
    assert store.count() == 8


def test_a_write_of_several_sources_counts_each_source_apart(store: Store) -> None:
    """One transaction with two sources' batches tells each source's stored events and repeats."""
    records = sample_records()
    one = run_job(store, "ct_prod", records[:5], origin="a.json.gz")
    two = run_job(store, "ct_org", records[3:], origin="b.json.gz")
    result = store.write([one, two])
    assert result.stored_by_source == {"ct_prod": 5, "ct_org": 3}
    assert result.duplicates_by_source == {"ct_org": 2}
    again = store.write(
        [run_job(store, "ct_org", records[:2]), run_job(store, "ct_prod", records[5:])]
    )
    assert again.stored_by_source == {}
    assert again.duplicates_by_source == {"ct_org": 2, "ct_prod": 3}


def test_colliding_events_of_two_sources_are_counted_for_each(store: Store) -> None:
    """An event placed past a key another source's event took counts for its own source."""
    first, second, key = _pair()
    result = store.write(
        [crafted("syslog_auth", [first], key=key), crafted("syslog_web", [second], key=key)]
    )
    assert result.stored_by_source == {"syslog_auth": 1, "syslog_web": 1}
    again = store.write([crafted("syslog_web", [second], key=key)])
    assert (again.stored_by_source, again.duplicates_by_source) == ({}, {"syslog_web": 1})


def test_repeated_record_inside_one_file_is_stored_once(store: Store) -> None:
    """A file that lists the same record twice yields one event."""
    record = by_name("ConsoleLogin")[0]
    result = store.write([run_job(store, "ct_prod", [record, deepcopy(record)])])
    assert (result.stored, result.duplicates) == (1, 1)
    assert actions(store.search(EventQuery())) == ["ConsoleLogin"]


def _pair() -> tuple[AuditEvent, AuditEvent, int]:
    moment = at("2026-11-20T05:00:00")
    first = AuditEvent(
        timestamp=moment,
        id="collision-one",
        dataset="system.auth",
        action="first_action",
        message="kestrel alpha",
    )
    second = AuditEvent(
        timestamp=moment,
        id="collision-two",
        dataset="system.auth",
        action="second_action",
        message="kestrel bravo",
    )
    return first, second, row_key(moment, event_hash(first.id))


def test_two_events_on_one_key_are_both_stored(store: Store) -> None:
    """Different events that share a row key are both kept; re-writing them stores nothing."""
    first, second, key = _pair()
    batch = crafted("syslog_auth", [first, second], key=key)
    result = store.write([batch])
    assert (result.stored, result.duplicates) == (2, 0)
    again = store.write([batch])
    assert (again.stored, again.duplicates) == (0, 2)
    assert store.count() == 2
    assert actions(store.search(EventQuery(text="bravo"))) == ["second_action"]
    assert actions(store.search(EventQuery(text="alpha"))) == ["first_action"]
    assert sorted(actions(store.search(EventQuery(text="kestrel")))) == [
        "first_action",
        "second_action",
    ]


def test_colliding_events_read_again_in_any_order_are_stored_once(store: Store) -> None:
    """Two events on one key, stored by separate writes, are repeats when re-read in any order."""
    first, second, key = _pair()
    assert store.write([crafted("syslog_auth", [first], key=key)]).stored == 1
    assert store.write([crafted("syslog_auth", [second], key=key)]).stored == 1
    same_order = store.write([crafted("syslog_auth", [first, second], key=key)])
    assert (same_order.stored, same_order.duplicates) == (0, 2)
    other_order = store.write([crafted("syslog_auth", [second, first], key=key)])
    assert (other_order.stored, other_order.duplicates) == (0, 2)
    assert store.count() == 2


# -- checkpoints and atomicity ---------------------------------------------------


def test_checkpoints_are_committed_with_the_events(store: Store) -> None:
    """A batch's checkpoints are readable per source after the write; later ones replace them."""
    key = "AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/20/a.json.gz"
    store.write(
        [run_job(store, "ct_prod", sample_records(), checkpoints=[Checkpoint(key, {"size": 10})])]
    )
    assert store.checkpoints("ct_prod") == {key: {"size": 10}}
    assert store.checkpoints("ct_org") == {}
    store.write([run_job(store, "ct_prod", [], checkpoints=[Checkpoint(key, {"size": 20})])])
    assert store.checkpoints("ct_prod") == {key: {"size": 20}}


def test_checkpoint_of_an_unreadable_file_is_committed_with_its_quarantine_entry(
    store: Store,
) -> None:
    """A payload the source could not read is quarantined and its checkpoint still moves on."""
    checkpoint = Checkpoint("bad.json.gz", {"size": -1, "mtime_ns": -1})
    batch = run_job(
        store,
        "ct_prod",
        payload=b"",
        error="cannot read file: Permission denied",
        checkpoints=[checkpoint],
        origin="/srv/trail/bad.json.gz",
    )
    result = store.write([batch])
    assert result.quarantined == 1
    assert store.checkpoints("ct_prod") == {"bad.json.gz": {"size": -1, "mtime_ns": -1}}


def test_failed_write_leaves_neither_events_nor_checkpoints(
    store: Store, engine: Engine, place: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that raises midway rolls back its events, index entries and checkpoints."""
    store.write(
        [run_job(store, "ct_archive", by_name(*OCTOBER), checkpoints=[Checkpoint("oct", {})])]
    )
    batch = run_job(store, "ct_prod", by_name(*NOVEMBER), checkpoints=[Checkpoint("nov", {})])

    def fail(*_args: object) -> int:
        raise RuntimeError("disk went away")

    monkeypatch.setattr(store, "_quarantine", fail)
    with pytest.raises(RuntimeError, match="disk went away"):
        store.write([batch])
    assert store.count() == 2
    assert store.checkpoints("ct_prod") == {}
    assert store.checkpoints("ct_archive") == {"oct": {}}
    assert actions(store.search(EventQuery(order="oldest"))) == OCTOBER
    reader = engine.open(place, readonly=True)
    try:
        assert reader.count() == 2
        assert reader.checkpoints("ct_prod") == {}
    finally:
        reader.close()


def test_batch_is_stored_when_retried_after_a_failed_write(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a rolled-back write (that began a new month) the same batch can be written again."""
    batch = run_job(store, "ct_prod", by_name(*NOVEMBER), checkpoints=[Checkpoint("nov", {})])

    def fail(*_args: object) -> int:
        raise RuntimeError("disk went away")

    with monkeypatch.context() as patch:
        patch.setattr(store, "_quarantine", fail)
        with pytest.raises(RuntimeError):
            store.write([batch])
    result = store.write([batch])
    assert result.stored == len(NOVEMBER)
    assert store.checkpoints("ct_prod") == {"nov": {}}
    assert actions(store.search(EventQuery(text="mallory"))) == ["ConsoleLogin"]


# -- search ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(EventQuery(), NEWEST_FIRST, id="no-filter"),
        pytest.param(EventQuery(user="alice.smith"), ["AttachRolePolicy", "CreateUser"], id="user"),
        pytest.param(EventQuery(user="carol@example.com"), ["DescribeInstances"], id="user-sso"),
        pytest.param(EventQuery(ip="203.0.113.5"), ["AttachRolePolicy", "CreateUser"], id="ip"),
        pytest.param(EventQuery(ip="2001:db8::1"), ["DescribeInstances"], id="ip-v6-canonical"),
        pytest.param(EventQuery(action="ConsoleLogin"), ["ConsoleLogin"], id="action"),
        pytest.param(
            EventQuery(account="222222222222"),
            ["GetBucketPolicy", "DescribeInstances"],
            id="account",
        ),
        pytest.param(
            EventQuery(region="us-east-1"),
            ["GenerateDataKey", "ConsoleLogin", "AttachRolePolicy", "CreateUser", *OCTOBER[::-1]],
            id="region",
        ),
        pytest.param(EventQuery(dataset="aws.cloudtrail"), NEWEST_FIRST, id="dataset"),
        pytest.param(EventQuery(dataset="system.auth"), [], id="dataset-none"),
        pytest.param(
            EventQuery(outcome="failure"), ["GetBucketPolicy", "ConsoleLogin"], id="outcome"
        ),
        pytest.param(EventQuery(source="ct_archive"), OCTOBER[::-1], id="source"),
        pytest.param(EventQuery(user="alice.smith", action="CreateUser"), ["CreateUser"], id="and"),
        pytest.param(EventQuery(user="nobody"), [], id="no-match"),
    ],
)
def test_search_by_field(timeline: Store, query: EventQuery, expected: list[str]) -> None:
    """Each exact-match filter selects its events, newest first, and filters combine with AND."""
    assert actions(timeline.search(query)) == expected


def test_search_by_actor_and_host(store: Store) -> None:
    """The actor (identity map) and host filters select events that carry those fields."""
    moment = at("2026-11-20T06:00:00")
    sudo = AuditEvent(
        timestamp=moment,
        id="sudo-1",
        dataset="system.auth",
        action="sudo",
        actor="alice",
        host_name="bastion-1",
        user_name="asmith",
    )
    login = AuditEvent(
        timestamp=moment + timedelta(seconds=1),
        id="ssh-1",
        dataset="system.auth",
        action="ssh_login",
        actor="bob",
        host_name="db-1",
    )
    store.write([crafted("bastion_auth", [sudo, login])])
    assert actions(store.search(EventQuery(actor="alice"))) == ["sudo"]
    assert actions(store.search(EventQuery(host="db-1"))) == ["ssh_login"]
    assert actions(store.search(EventQuery(host="db-1", actor="alice"))) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("mallory", ["ConsoleLogin"], id="word"),
        pytest.param("MALLORY", ["ConsoleLogin"], id="any-case"),
        pytest.param("mallory Failure", ["ConsoleLogin"], id="two-words"),
        pytest.param("mallory Success", [], id="every-word-must-occur"),
        pytest.param("203.0.113.5", ["AttachRolePolicy", "CreateUser"], id="ip"),
        pytest.param("alice.smith", ["AttachRolePolicy", "CreateUser"], id="dotted-user"),
        pytest.param("alice", [], id="part-of-dotted-user"),
        pytest.param("Descr*", ["DescribeInstances", "DescribeRegions"], id="prefix"),
        pytest.param("arn:aws:iam::aws:policy/AdministratorAccess", ["AttachRolePolicy"], id="arn"),
        pytest.param(
            '"arn:aws:iam::aws:policy/AdministratorAccess"', ["AttachRolePolicy"], id="quoted-arn"
        ),
        pytest.param("payroll-exports", ["GetBucketPolicy"], id="request-parameter"),
        pytest.param("AccessDenied", ["GetBucketPolicy"], id="error-code"),
        pytest.param("bob", ["GetBucketPolicy", "CreateUser"], id="user-and-target"),
        pytest.param("NEAR( AND", [], id="fts-syntax-is-literal"),
        pytest.param("*", [], id="lone-star"),
    ],
)
def test_search_full_text(timeline: Store, text: str, expected: list[str]) -> None:
    """Full-text search: every word must occur, punctuation is literal, ``word*`` is a prefix."""
    assert actions(timeline.search(EventQuery(text=text))) == expected


def test_search_text_and_field_filters_combine(timeline: Store) -> None:
    """Text and field filters together must all hold."""
    query = EventQuery(text="Descr*", source="ct_archive")
    assert actions(timeline.search(query)) == ["DescribeRegions"]


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        pytest.param(
            "2026-11-20T02:00:00",
            None,
            ["GetBucketPolicy", "GenerateDataKey", "DescribeInstances", "ConsoleLogin"],
            id="since-inclusive",
        ),
        pytest.param(
            None,
            "2026-11-20T02:00:00",
            ["ConsoleLogin", "AttachRolePolicy", "CreateUser", *OCTOBER[::-1]],
            id="until-inclusive",
        ),
        pytest.param(
            "2026-11-20T01:05:00",
            "2026-11-20T03:00:00",
            ["DescribeInstances", "ConsoleLogin", "AttachRolePolicy"],
            id="both",
        ),
        pytest.param("2026-11-20T02:00:00.001", "2026-11-20T02:59:59.999", [], id="empty-span"),
        pytest.param("2026-12-01T00:00:00", None, [], id="after-everything"),
    ],
)
def test_search_time_bounds(
    timeline: Store, since: str | None, until: str | None, expected: list[str]
) -> None:
    """``since`` and ``until`` bound event time, both ends inclusive."""
    query = EventQuery(since=since and at(since), until=until and at(until))
    assert actions(timeline.search(query)) == expected


def test_search_time_bounds_apply_to_text_search(timeline: Store) -> None:
    """Bounds also narrow full-text and field searches, including which months are read."""
    nov = at("2026-11-01T00:00:00")
    assert actions(timeline.search(EventQuery(text="Descr*", since=nov))) == ["DescribeInstances"]
    assert actions(timeline.search(EventQuery(text="Descr*", until=nov))) == ["DescribeRegions"]
    query = EventQuery(user="alice.smith", since=at("2026-11-20T01:01:00"))
    assert actions(timeline.search(query)) == ["AttachRolePolicy"]


def test_search_order_and_limit(timeline: Store) -> None:
    """Newest or oldest first, cut at ``limit``."""
    assert actions(timeline.search(EventQuery(order="oldest"))) == ALL
    assert actions(timeline.search(EventQuery(limit=3))) == NEWEST_FIRST[:3]
    assert actions(timeline.search(EventQuery(limit=3, order="oldest"))) == ALL[:3]


def test_search_across_two_months(timeline: Store) -> None:
    """Text and field searches read October's and November's index in the right order."""
    assert actions(timeline.search(EventQuery(text="Descr*", limit=1))) == ["DescribeInstances"]
    oldest = EventQuery(text="Descr*", limit=1, order="oldest")
    assert actions(timeline.search(oldest)) == ["DescribeRegions"]
    spanning = EventQuery(region="us-east-1", limit=3, order="oldest")
    assert actions(timeline.search(spanning)) == [*OCTOBER, "CreateUser"]
    spanning_back = EventQuery(region="us-east-1", limit=5)
    assert actions(timeline.search(spanning_back)) == [
        "GenerateDataKey",
        "ConsoleLogin",
        "AttachRolePolicy",
        "CreateUser",
        "StopInstances",
    ]


def test_each_month_has_its_own_table(engine: Engine, timeline_place: str) -> None:
    """Events (PostgreSQL partitions) or their index (SQLite FTS5 tables) are kept by month."""
    assert engine.months(timeline_place) >= {"202610", "202611"}


def test_search_of_an_empty_store(store: Store) -> None:
    """An empty store answers every kind of query with no events (no index tables yet)."""
    assert store.search(EventQuery()) == []
    assert store.search(EventQuery(text="mallory")) == []
    assert store.search(EventQuery(user="alice.smith", limit=1)) == []


def test_search_returns_the_ecs_document(timeline: Store) -> None:
    """A hit is the event's full ECS document, original record included."""
    (doc,) = timeline.search(EventQuery(action="ConsoleLogin"))
    record = by_name("ConsoleLogin")[0]
    assert doc["@timestamp"] == "2026-11-20T02:00:00Z"
    assert doc["event"]["id"] == record["eventID"]
    assert doc["event"]["outcome"] == "failure"
    assert doc["source"]["ip"] == "198.51.100.7"
    assert doc["original"] == record


# -- quarantine ------------------------------------------------------------------


def test_bad_records_are_quarantined_once(store: Store) -> None:
    """A record without eventID is kept in quarantine with its origin, and not again on re-write."""
    good = by_name("CreateUser")[0]
    bad = {k: v for k, v in by_name("ConsoleLogin")[0].items() if k != "eventID"}
    origin = "AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/20/mixed.json.gz"
    batch = run_job(store, "ct_prod", [good, bad], origin=origin)
    first = store.write([batch])
    assert (first.stored, first.quarantined) == (1, 1)
    second = store.write([run_job(store, "ct_prod", [good, bad], origin=origin)])
    assert (second.stored, second.quarantined) == (0, 0)
    (entry,) = store.quarantine()
    assert entry.source == "ct_prod"
    assert entry.origin == origin
    assert entry.position == 1
    assert "eventID" in entry.reason
    assert orjson.loads(entry.raw) == bad
    assert entry.raw_size == len(entry.raw)


def test_bad_payloads_are_quarantined_once_and_listed_by_source(store: Store) -> None:
    """Unreadable and undecodable files are listed per source, newest first, never twice."""
    for _ in range(2):
        store.write(
            [
                run_job(
                    store,
                    "ct_prod",
                    payload=b"",
                    error="cannot read file: EACCES",
                    origin="/srv/a.json.gz",
                ),
                run_job(store, "ct_org", payload=b"<html>oops</html>", origin="/srv/b.json"),
            ]
        )
    assert [e.origin for e in store.quarantine()] == ["/srv/b.json", "/srv/a.json.gz"]
    (prod,) = store.quarantine(source="ct_prod")
    assert (prod.reason, prod.position) == ("cannot read file: EACCES", None)
    (org,) = store.quarantine(source="ct_org")
    assert org.reason
    assert b"<html>" in org.raw
    assert store.quarantine(source="ct_none") == []
    assert len(store.quarantine(limit=1)) == 1
    assert store.count() == 0


# -- retention -------------------------------------------------------------------


def test_prune_deletes_old_events_and_drops_past_months(
    filled: Store, engine: Engine, place: str
) -> None:
    """Events older than retention_days go, and a month wholly past the floor loses its table."""
    filled.close()
    store = engine.open(place, retention_days=30)
    try:
        assert store.prune(at("2026-12-01T00:00:00")) == 2
        assert store.count() == 6
        months = engine.months(place)
        assert "202611" in months
        assert "202610" not in months
        assert actions(store.search(EventQuery(text="Descr*"))) == ["DescribeInstances"]
        assert actions(store.search(EventQuery(order="oldest", limit=1))) == ["CreateUser"]
        # Half of November is now past the floor: its rows go, its table stays.
        assert store.prune(at("2026-12-21T00:00:00")) == 5
        assert "202611" in engine.months(place)
        assert actions(store.search(EventQuery())) == ["GetBucketPolicy"]
        assert actions(store.search(EventQuery(text="alice.smith"))) == []
    finally:
        store.close()


def test_prune_keeps_everything_without_retention(filled: Store) -> None:
    """retention_days = 0 keeps every event."""
    assert filled.prune(at("2030-01-01T00:00:00")) == 0
    assert filled.count() == 8


def test_write_counts_events_older_than_retention_as_expired(engine: Engine, place: str) -> None:
    """An event already past retention when it arrives is counted as expired, not stored."""
    store = open_for_workers(engine, place, retention_days=30)
    now = datetime.now(UTC)
    old, recent = deepcopy(by_name("CreateUser", "ConsoleLogin"))
    old["eventTime"] = (now - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent["eventTime"] = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        result = store.write([run_job(store, "ct_prod", [old, recent])])
        assert (result.stored, result.expired, result.duplicates) == (1, 1, 0)
        assert actions(store.search(EventQuery())) == ["ConsoleLogin"]
    finally:
        store.close()


# -- codec -----------------------------------------------------------------------


def _clones(start: int, count: int) -> list[JSON]:
    """Distinct real-format records: the samples with fresh ids and times."""
    raw = [orjson.dumps(r) for r in sample_records()]
    base = at("2026-11-22T00:00:00")
    out = []
    for n in range(start, start + count):
        record = orjson.loads(raw[n % len(raw)])
        record["eventID"] = f"{n:08x}-0000-4000-8000-{n:012x}"
        record["eventTime"] = (base + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(record)
    return out


def _expected(record: JSON) -> JSON:
    return cloudtrail.normalize(record).to_document()


def _without_ingested(doc: JSON) -> JSON:
    event = {k: v for k, v in doc["event"].items() if k != "ingested"}
    return {**doc, "event": event}


def test_dictionary_is_trained_and_documents_read_back(
    store: Store, engine: Engine, place: str
) -> None:
    """After TRAIN_SAMPLES sampled documents a dictionary is used, and old and new rows decode."""
    per_batch = 200
    records: list[JSON] = []
    batches = 0
    while store.codec == codecs.PLAIN:
        sampled = batches * min(per_batch, max(SAMPLES_PER_BATCH, per_batch // SAMPLES_SHARE))
        assert sampled <= codecs.TRAIN_SAMPLES, "no dictionary after enough samples"
        chunk = _clones(len(records), per_batch)
        records += chunk
        store.write([run_job(store, "ct_prod", chunk)])
        batches += 1
    trained = store.codec
    assert trained != codecs.PLAIN
    assert not store.wants_samples
    after = _clones(len(records), 50)
    batch = run_job(store, "ct_prod", after)
    assert {row[2] for row in batch.rows} == {trained}
    store.write([batch])
    records += after

    expected = {r["eventID"]: _expected(r) for r in records}
    docs = store.search(EventQuery(limit=len(records) + 10, order="oldest"))
    assert len(docs) == len(records)
    assert {d["event"]["id"]: _without_ingested(d) for d in docs} == expected

    store.close()
    reopened = engine.open(place, readonly=True)
    try:
        assert reopened.codec == trained
        found = reopened.search(EventQuery(text="mallory", limit=5000))
        assert len(found) == sum(1 for r in records if r["eventName"] == "ConsoleLogin")
        assert all(_without_ingested(d) == expected[d["event"]["id"]] for d in found)
    finally:
        reopened.close()


# -- lifecycle -------------------------------------------------------------------


def test_reopened_store_keeps_everything(store: Store, engine: Engine, place: str) -> None:
    """Events, index, checkpoints and quarantine survive closing and reopening the file."""
    store.write(
        [
            run_job(store, "ct_prod", sample_records(), checkpoints=[Checkpoint("f", {"n": 1})]),
            run_job(store, "ct_prod", payload=b"{", origin="/srv/broken.json"),
        ]
    )
    store.close()
    reopened = engine.open(place)
    try:
        assert reopened.count() == 8
        assert reopened.checkpoints("ct_prod") == {"f": {"n": 1}}
        assert [e.origin for e in reopened.quarantine()] == ["/srv/broken.json"]
        assert actions(reopened.search(EventQuery(text="alice.smith"))) == [
            "AttachRolePolicy",
            "CreateUser",
        ]
        assert actions(reopened.search(EventQuery(order="oldest"))) == ALL
        again = reopened.write([run_job(reopened, "ct_prod", sample_records())])
        assert (again.stored, again.duplicates) == (0, 8)
    finally:
        reopened.close()


def test_reader_sees_what_the_writer_committed(
    timeline: Store, engine: Engine, timeline_place: str
) -> None:
    """A read-only store opened beside the writer (SQLite: WAL) sees committed events."""
    reader = engine.open(timeline_place, readonly=True)
    try:
        assert reader.count() == 8
        assert actions(reader.search(EventQuery(user="mallory"))) == ["ConsoleLogin"]
    finally:
        reader.close()


# -- SQLite internals (SQLite only) ------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "timeline.db", retention_days=0, normalize=normalize_record)
    init_worker(opened.dictionaries())
    yield opened
    opened.close()


class _CommitFails:
    """A connection stand-in whose next COMMIT fails, as it does on a full disk."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.armed = True

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.armed and sql == "COMMIT":
            self.armed = False
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_dictionary_from_a_failed_write_is_not_used(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the commit that adds a dictionary fails, no row is compressed with the lost one."""
    monkeypatch.setattr(codecs, "TRAIN_SAMPLES", 200)
    store = sqlite_store
    batch = run_job(store, "ct_prod", _clones(0, 200))
    monkeypatch.setattr(store, "_db", _CommitFails(store._db))
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        store.write([batch])
    assert store.count() == 0
    assert store.codec == codecs.PLAIN
    later = run_job(store, "ct_prod", _clones(200, 10))
    assert store.write([batch, later]).stored == 210
    assert len(store.search(EventQuery(limit=500))) == 210


def test_readonly_store_on_a_missing_path_says_what_to_do(tmp_path: Path) -> None:
    """Opening a store for reading where none exists fails clearly and creates nothing."""
    missing = tmp_path / "nowhere" / "timeline.db"
    with pytest.raises(FileNotFoundError, match=r"no store at .*timeline\.db.*auditcorr run"):
        SqliteStore(missing, retention_days=0, readonly=True, normalize=normalize_record)
    assert not missing.parent.exists()
