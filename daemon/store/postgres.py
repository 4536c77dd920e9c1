"""The timeline store in PostgreSQL, for deployments that outgrow one SQLite file.

The same tables, keys and behaviour as ``SqliteStore``: everything that is not
SQL (row preparation in the workers, compression, keys, alert shaping, the
write's sorting of rows) is shared.  Like SQLite, one store object is one
connection used by one thread at a time: the pipeline's writer thread, the
delivery worker and each API reader thread open their own.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from daemon.store import (
    alert_events,
    pgalerts,
    pgfeed,
    pgschema,
    pgsearch,
    placing,
    transfer,
    writing,
)
from daemon.store import codec as codecs
from daemon.store.base import (
    EventQuery,
    Found,
    StoreUnavailableError,
    WriteResult,
)
from daemon.store.keys import key_floor, key_minute, month_of
from daemon.store.pgoutbox import PostgresOutbox, enqueue
from daemon.store.reads import StoreReads, as_format, bounds, events_between
from daemon.store.units import Batch, Entry, Normalize, Round

_INSERT_EVENTS = (
    b"INSERT INTO events (id, eid, source, codec, doc, search)"
    b" SELECT id, eid, source, codec, doc, search::tsvector FROM unnest("
    b"%s::bigint[], %s::bigint[], %s::text[], %s::int[], %s::bytea[], %s::text[])"
    b" AS t(id, eid, source, codec, doc, search) ON CONFLICT DO NOTHING RETURNING id"
)

_NUMBERED = ("codecs", "quarantine", "outbox")
"""Tables whose ids come from a sequence."""


def _now_us() -> int:
    return time.time_ns() // 1000


def describe(dsn: str) -> str:
    """The DSN without its password, for logs and summaries."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql (unparsable dsn)"
    params.pop("password", None)
    return "postgresql " + make_conninfo("", **params)


def connect(dsn: str, *, readonly: bool = False) -> psycopg.Connection:
    """A connection in autocommit mode (transactions are explicit); read-only when asked."""
    extra: dict[str, str] = {"application_name": "auditcorr"}
    if readonly:
        given = conninfo_to_dict(dsn).get("options") or ""
        extra["options"] = f"{given} -c default_transaction_read_only=on".strip()
    try:
        db = psycopg.connect(make_conninfo(dsn, **extra), autocommit=True)
    except psycopg.OperationalError as err:
        raise StoreUnavailableError(f"cannot connect to {describe(dsn)}: {err}") from err
    # No server-side prepared statements: a generic plan cannot know whether a
    # search word is rare or in every event, and picks a scan that is slow for
    # one of them; each query is planned with its own values instead.
    db.prepare_threshold = None
    return db


def read_dictionary(dsn: str, codec: int) -> bytes:
    """A compression dictionary by id (for decoding workers: module level, so it pickles)."""
    with connect(dsn, readonly=True) as db:
        found = db.execute("SELECT data FROM codecs WHERE id = %s", (codec,)).fetchone()
    if found is None:
        raise LookupError(f"codec {codec} not in store {describe(dsn)}")
    return bytes(found[0])


class PostgresStore(PostgresOutbox, StoreReads):
    """Timeline store in one PostgreSQL database (outbox methods from ``PostgresOutbox``,
    reads from ``StoreReads``)."""

    def __init__(
        self,
        dsn: str,
        *,
        retention_days: int,
        readonly: bool = False,
        member: str = "",
        normalize: Normalize | None = None,
    ) -> None:
        self.dsn = dsn
        self._normalize = normalize
        self.member = member
        """Who holds this connection's outbox leases and writes its feed rows (the
        cluster member name)."""
        self.location = describe(dsn)
        self.retention_days = retention_days
        self._readonly = readonly
        self._conn = connect(dsn, readonly=readonly)
        try:
            if readonly:
                if pgschema.version_of(self._db) == 0:
                    raise FileNotFoundError(
                        f"no store in {self.location}; run 'auditcorr run' or 'backfill' first"
                    )
            else:
                pgschema.migrate(self._db)
            self._months = pgschema.partitions(self._db)
            row = self._db.execute("SELECT max(id) FROM codecs").fetchone()
        except BaseException:
            self._conn.close()
            raise
        self._codec = int(row[0]) if row and row[0] is not None else codecs.PLAIN
        self._codecs = codecs.Codecs(self._codec_bytes)
        self._samples: list[bytes] = []
        self._wrote = False

    @property
    def _db(self) -> psycopg.Connection:
        """The connection, opened again once the last one broke: a database that went
        away and came back is used again without a restart (a failed open raises
        ``StoreUnavailableError``, which writers retry)."""
        if self._conn.closed:
            self._conn = connect(self.dsn, readonly=self._readonly)
        return self._conn

    def dictionaries(self) -> Callable[[int], bytes]:
        return partial(read_dictionary, self.dsn)

    # -- writing -------------------------------------------------------------

    @property
    def codec(self) -> int:
        return self._codec

    @property
    def wants_samples(self) -> bool:
        return self._codec == codecs.PLAIN

    def write(self, batches: Sequence[Batch]) -> WriteResult:
        """One transaction: events (deduplicated) with their index text, quarantine,
        checkpoints, change record versions, and the feed row of the events stored."""
        now = _now_us()
        rows = writing.sort_rows(batches, self._retention_floor())
        saved = (self._codec, list(self._samples))
        try:
            with self._writing():
                # A change record version seen before made its event then.
                repeated, kept = writing.book(batches, now, self._count_rows)
                rows.drop(repeated)
                fresh = rows.fresh
                self._partitions(fresh)
                inserted = self._insert(list(fresh.values()))
                # Keys held already: by the same event (a repeat) or another one.
                rows.settle(self._existing([key for key in fresh if key not in inserted]))
                minutes = writing.minute_counts(fresh.items())
                minutes += rows.place_collisions(self._placing)
                self._count_minutes(minutes)
                quarantined = self._write_rest(batches, now)
                feed = writing.feed_entries(batches, rows.stored_eids(), kept)
                if feed:
                    pgfeed.append(self._db, feed, self.member)
        except BaseException:
            # Forget the dictionary the rolled-back transaction made.
            self._codec, self._samples = saved
            raise
        written = WriteResult.of(rows, quarantined)
        self._wrote = self._wrote or written.stored > 0
        return written

    @contextlib.contextmanager
    def _writing(self) -> Iterator[psycopg.Connection]:
        """One transaction; when it fails, forget the partitions it made.  A connection
        that broke is ``StoreUnavailableError``: writers retry."""
        saved = set(self._months)
        try:
            with self._db.transaction():
                yield self._db
        except psycopg.OperationalError as err:
            self._months = saved
            raise StoreUnavailableError(f"{self.location}: {err}") from err
        except BaseException:
            self._months = saved
            raise

    def _count_minutes(self, minutes: Counter[tuple[int, str]]) -> None:
        with self._db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO minute_counts (minute, log_type, count) VALUES (%s, %s, %s)"
                " ON CONFLICT (minute, log_type)"
                " DO UPDATE SET count = minute_counts.count + excluded.count",
                [(minute, log_type, n) for (minute, log_type), n in minutes.items()],
            )

    def _write_rest(self, batches: Sequence[Batch], now: int) -> int:
        """Quarantine, checkpoints and dictionary of a write, in its transaction."""
        quarantined = self._quarantine(batches, now)
        with self._db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO checkpoints (source, key, value, updated_at) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (source, key) DO UPDATE"
                " SET value = excluded.value, updated_at = excluded.updated_at",
                writing.checkpoint_rows(batches, now),
            )
        self._learn_codec(batches, now)
        return quarantined

    # -- the correlator's feed and state -------------------------------------

    def feed_after(self, position: int, limit: int) -> list[tuple[int, bytes]]:
        return pgfeed.after(self._db, position, limit)

    def correlation_state(self) -> tuple[int, dict[str, bytes]]:
        return pgfeed.state(self._db)

    def held_hits(self, groups: Collection[tuple[str, str]]) -> dict[tuple[str, str], list[bytes]]:
        return pgfeed.held(self._db, groups)

    def commit_round(self, done: Round) -> None:
        now = _now_us()
        with self._writing() as db:
            pgfeed.move(db, done.after, done.position, done.state)
            pgfeed.hold(db, done)
            pgalerts.upsert(db, done.alerts, now)
            compress = self._codecs.compressor(self._codec).compress
            self._count_minutes(
                alert_events.place(done.entries, self._codec, compress, self._placing)
            )
            enqueue(db, done.deliveries, now)

    def prune_feed(self) -> int:
        return pgfeed.prune(self._db)

    def _partitions(self, fresh: dict[int, Entry]) -> None:
        """Make the monthly partitions the keys of ``fresh`` fall in."""
        for key in fresh:
            if month_of(key) not in self._months:
                self._months.add(pgschema.create_partition(self._db, key))

    def _insert(self, entries: list[Entry]) -> set[int]:
        """Store events whose keys are free; returns the keys stored."""
        if not entries:
            return set()
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
        for source, (key, eid, codec, doc), text, _ in entries:
            for column, value in zip(
                columns,
                (key, eid, source, codec, doc, pgsearch.document_vector(text)),
                strict=True,
            ):
                column.append(value)
        with self._db.cursor() as cursor:
            cursor.execute(_INSERT_EVENTS, columns)
            return {row[0] for row in cursor.fetchall()}

    def _existing(self, keys: list[int]) -> list[tuple[int, int]]:
        if not keys:
            return []
        rows = self._db.execute("SELECT id, eid FROM events WHERE id = ANY(%s)", (keys,))
        return [(int(key), int(eid)) for key, eid in rows]

    @property
    def _placing(self) -> placing.Access:
        return placing.Access(self._rows, self._run_many, self._existing, self._insert_placed)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._db.cursor() as cursor:
            cursor.executemany(as_format(sql), rows)

    def _insert_placed(self, placed: list[tuple[int, Entry]]) -> set[int]:
        """Store events on the keys ``placing`` chose, in the partitions they fall in."""
        entries = [
            (source, (key, eid, codec, doc), text, log_type)
            for key, (source, (_, eid, codec, doc), text, log_type) in placed
        ]
        self._partitions({entry[1][0]: entry for entry in entries})
        return self._insert(entries)

    def _quarantine(self, batches: Sequence[Batch], now: int) -> int:
        found = writing.quarantine_rows(batches, now)
        if not found:
            return 0
        with self._db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO quarantine (at, source, origin, position, reason, raw, raw_size)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                found,
            )
            return max(cursor.rowcount, 0)

    def _learn_codec(self, batches: Sequence[Batch], now: int) -> None:
        """Train a dictionary from the first documents the store sees."""
        if self._codec != codecs.PLAIN or not writing.collect_samples(self._samples, batches):
            return
        data = codecs.train(self._samples)
        row = self._db.execute(
            "INSERT INTO codecs (created_at, data) VALUES (%s, %s) RETURNING id", (now, data)
        ).fetchone()
        self._codec = int(row[0]) if row else codecs.PLAIN
        self._samples = []

    def import_rows(
        self, statements: Sequence[transfer.Statement], events: Sequence[Entry]
    ) -> None:
        """One transaction of a store copy: ``events`` as they were stored elsewhere (same
        keys, codecs and documents) with their index, then ``statements``.

        Rows keep their ids, so the id sequences move past the ids copied."""
        with self._writing() as db, db.cursor() as cursor:
            self._partitions({entry[1][0]: entry for entry in events})
            self._insert(list(events))
            transfer.run(
                lambda sql: cursor.execute(as_format(sql)),
                lambda sql, rows: cursor.executemany(as_format(sql), rows),
                statements,
            )
            for table in _NUMBERED:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" coalesce(max(id), 0) + 1, false) FROM {table}".encode()
                )
        self._wrote = self._wrote or bool(events)

    # -- reading -------------------------------------------------------------

    def _codec_bytes(self, codec: int) -> bytes:
        row = self._db.execute("SELECT data FROM codecs WHERE id = %s", (codec,)).fetchone()
        if row is None:
            raise LookupError(f"codec {codec} missing from {self.location}")
        return bytes(row[0])

    def page(self, query: EventQuery) -> list[Found]:
        low, high = bounds(query)
        direction = "DESC" if query.order == "newest" else "ASC"
        match = pgsearch.query_of(query)
        if match == pgsearch.NOTHING:
            return []
        if match is None:
            return self._found_all(self._rows(events_between(direction), (low, high, query.limit)))
        rows = self._db.execute(
            f"SELECT id, source, codec, doc FROM events WHERE id BETWEEN %s AND %s"
            f" AND search @@ %s::tsquery ORDER BY id {direction} LIMIT %s".encode(),
            (low, high, match, query.limit),
        ).fetchall()
        return self._found_all(rows)

    def _count_rows(self, sql: str, params: Sequence[Any]) -> int:
        return max(self._db.execute(as_format(sql), params).rowcount, 0)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._db.execute(as_format(sql), params).fetchall()

    def interrupt(self) -> None:
        self._conn.cancel_safe()

    # -- upkeep --------------------------------------------------------------

    def _retention_floor(self, now: datetime | None = None) -> int:
        return writing.retention_floor(self.retention_days, now)

    def prune(self, now: datetime) -> int:
        """Drop the months of events wholly past retention, delete the older part of the
        month it ends in, and make the partitions of this month and the next ahead."""
        floor = self._retention_floor(now)
        if floor == 0:
            return 0
        with self._db.transaction():
            deleted = 0
            for month in sorted(pgschema.partitions(self._db)):
                if month < month_of(floor):
                    deleted += pgschema.drop_partition(self._db, month)
            deleted += self._db.execute("DELETE FROM events WHERE id < %s", (floor,)).rowcount
            self._db.execute("DELETE FROM minute_counts WHERE minute < %s", (key_minute(floor),))
            placing.prune(self._count_rows, floor, crowd=False)
            cutoff_us = int((now - timedelta(days=self.retention_days)).timestamp() * 1e6)
            self._db.execute("DELETE FROM quarantine WHERE at < %s", (cutoff_us,))
            for ahead in (now, now + timedelta(days=32)):
                pgschema.create_partition(self._db, key_floor(ahead))
        self._months = pgschema.partitions(self._db)
        self.prune_deliveries(now - timedelta(days=self.retention_days))
        return deleted

    def close(self) -> None:
        if self._wrote and not self._conn.closed:
            # As SQLite's PRAGMA optimize on close: statistics for the planner now,
            # not when autovacuum comes by (a sample, so bounded on large tables).
            self._wrote = False
            self._conn.execute("ANALYZE events")
        self._conn.close()
