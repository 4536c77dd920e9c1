"""What only the PostgreSQL store does: reconnecting after a lost connection, planner
statistics on close.  The behaviour both engines share is tested in test_timeline_store.py."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from storesupport import PostgresEngine, engine_for, open_for_workers
from test_timeline_store import by_name, run_job, sample_records

from daemon.store.base import EventQuery, StoreUnavailableError
from daemon.store.postgres import PostgresStore


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresEngine]:
    with engine_for("postgresql", tmp_path_factory) as found:
        assert isinstance(found, PostgresEngine)
        yield found


def _backend_pid(store: PostgresStore) -> int:
    row = store._db.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_a_lost_connection_fails_one_write_and_the_next_reconnects(
    postgres: PostgresEngine,
) -> None:
    """A write on a connection the server dropped raises StoreUnavailableError (the
    pipeline retries it); the retry connects again and stores the batch."""
    place = postgres.place()
    store = open_for_workers(postgres, place)
    assert isinstance(store, PostgresStore)
    try:
        batch = run_job(store, "ct_prod", sample_records())
        with psycopg.connect(place, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (_backend_pid(store),))
        with pytest.raises(StoreUnavailableError):
            store.write([batch])
        result = store.write([batch])
        assert result.stored == len(sample_records())
        assert store.count() == len(sample_records())
    finally:
        store.close()


def test_closing_a_store_that_wrote_gathers_planner_statistics(postgres: PostgresEngine) -> None:
    """After a write and close, the events partitions have been analyzed (as SQLite's
    PRAGMA optimize on close), so the first searches get a good plan."""
    place = postgres.place()
    store = open_for_workers(postgres, place)
    store.write([run_job(store, "ct_prod", by_name("CreateUser", "ConsoleLogin"))])
    store.close()
    with psycopg.connect(place) as db:
        rows = db.execute(
            "SELECT relname, last_analyze FROM pg_stat_user_tables"
            " WHERE schemaname = current_schema() AND relname LIKE 'events_%'"
        ).fetchall()
    assert rows
    assert all(analyzed is not None for _, analyzed in rows)
    reader = postgres.open(place, readonly=True)
    try:
        assert len(reader.search(EventQuery(text="mallory"))) == 1
    finally:
        reader.close()
