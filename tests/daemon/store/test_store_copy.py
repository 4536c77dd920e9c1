"""Copying a store into an empty one of the same engine, on SQLite and PostgreSQL:
the export/import pair each engine has for ``auditcorr migrate-store``."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from storesupport import Engine, crafted, open_for_workers
from test_placing import MOMENT, lines
from test_timeline_store import ALL, fill, run_job

from daemon.migrate_store import MigrationRefusedError, Progress, copy_store, finish, verify
from daemon.store import transfer
from daemon.store.base import EventQuery, Store
from daemon.store.keys import row_key
from daemon.store.writing import Entry

DISPLACED = next(table for table in transfer.TABLES if table.name == "displaced")


@pytest.fixture
def source(store: Store) -> Store:
    """The sample events in two sources, a checkpoint and a quarantined file."""
    fill(store)
    store.write([run_job(store, "ct_prod", payload=b"{", origin="broken.json.gz")])
    return store


@pytest.fixture
def target(engine: Engine) -> Iterator[Store]:
    opened = engine.open(engine.place())
    yield opened
    opened.close()


def copy(source: Store, target: Store, *, resume: bool = False) -> int:
    progress = Progress(source.table_count(transfer.EVENTS), out=io.StringIO())
    return copy_store(source, target, batch=3, resume=resume, progress=progress)


def test_copy_holds_the_same_timeline(source: Store, target: Store) -> None:
    """Every table, page and search of the copy equals the original's; the marker goes."""
    assert copy(source, target) == len(ALL)
    checks = verify(source, target)
    assert [c for c in checks if not c.ok] == []
    assert target.quarantine_count() == 1
    assert target.search(EventQuery(text="alice")) == source.search(EventQuery(text="alice"))
    assert target.export_rows(transfer.MARKER, 0, 1)
    finish(target)
    assert target.table_count(transfer.EVENTS) == len(ALL)
    with pytest.raises(MigrationRefusedError, match="not empty"):
        copy(source, target)
    with pytest.raises(MigrationRefusedError, match="nothing to resume"):
        copy(source, target, resume=True)


def test_copy_failing_mid_way_resumes_with_every_event_once(
    source: Store, target: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails leaves the batches before it; --resume copies the rest once."""
    real = target.import_rows
    calls: list[int] = []

    def fail_third_batch(statements: list[transfer.Statement], events: list[Entry]) -> None:
        if events:
            calls.append(len(events))
            if len(calls) == 3:
                raise OSError("connection lost")
        real(statements, events)

    monkeypatch.setattr(target, "import_rows", fail_third_batch)
    with pytest.raises(OSError, match="connection lost"):
        copy(source, target)
    assert target.table_count(transfer.EVENTS) == 6
    with pytest.raises(MigrationRefusedError, match="--resume"):
        copy(source, target)
    monkeypatch.setattr(target, "import_rows", real)

    assert copy(source, target, resume=True) == len(ALL) - 6
    assert [c for c in verify(source, target) if not c.ok] == []
    ids = [doc["event"]["id"] for doc in target.search(EventQuery(limit=100))]
    assert len(ids) == len(set(ids)) == len(ALL)


def test_copy_refuses_a_target_holding_a_timeline(source: Store, engine: Engine) -> None:
    """A target with events of its own is never copied into, with or without --resume."""
    other = open_for_workers(engine, engine.place())
    try:
        fill(other)
        with pytest.raises(MigrationRefusedError, match="not empty"):
            copy(source, other)
        with pytest.raises(MigrationRefusedError, match="nothing to resume"):
            copy(source, other, resume=True)
        assert other.table_count(transfer.EVENTS) == len(ALL)
    finally:
        other.close()


def test_copy_carries_the_displaced_events_of_a_crowded_millisecond(
    store: Store, target: Store
) -> None:
    """Events stored away from their natural keys (on SQLite, in its table of recent ones)
    are repeats in the copy, and the copy's counts match; new events crowding the copy's
    millisecond again record none of them twice."""
    burst = lines("burst", 40)
    key = row_key(MOMENT, 0)
    for start in range(0, 30, 10):
        assert store.write([crafted("syslog", burst[start : start + 10], key=key)]).stored == 10
    assert store.table_count(DISPLACED) >= 29
    copy(store, target)
    assert [c for c in verify(store, target) if not c.ok] == []
    again = target.write([crafted("syslog", burst, key=key)])
    assert (again.stored, again.duplicates) == (10, 30)
    recorded = [eid for _, eid, _ in target.export_rows(DISPLACED, 0, 1000)]
    assert len(recorded) == len(set(recorded))
    last = target.write([crafted("syslog", burst, key=key)])
    assert (last.stored, last.duplicates) == (0, 40)
