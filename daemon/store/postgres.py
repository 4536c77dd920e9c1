"""The timeline store in PostgreSQL, for deployments that outgrow one SQLite file.

The same tables, keys and behaviour as ``SqliteStore``: everything that is not
SQL (row preparation in the workers, compression, keys, alert shaping, the
write's sorting of rows) is shared.  Like SQLite, one store object is one
connection used by one thread at a time: the pipeline's writer thread, the
delivery worker and each API reader thread open their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from daemon.alert import Alert
from daemon.gcpause import cyclic_gc_paused
from daemon.process import Processed
from daemon.store import codec as codecs
from daemon.store import pgalerts, pgschema, pgsearch, stored, writing
from daemon.store.base import (
    JSON,
    EventQuery,
    Found,
    QuarantineEntry,
    Routes,
    StoreUnavailableError,
    WriteResult,
)
from daemon.store.keys import event_hash, key_ceiling, key_floor, key_minute, key_time, month_of
from daemon.store.pgoutbox import PostgresOutbox, enqueue
from daemon.store.writing import Entry

log = structlog.get_logger()

_COLUMNS = "id, source, codec, doc"
_INSERT_EVENTS = (
    b"INSERT INTO events (id, eid, source, codec, doc, search)"
    b" SELECT id, eid, source, codec, doc, search::tsvector FROM unnest("
    b"%s::bigint[], %s::bigint[], %s::text[], %s::int[], %s::bytea[], %s::text[])"
    b" AS t(id, eid, source, codec, doc, search) ON CONFLICT DO NOTHING RETURNING id"
)


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
        return psycopg.connect(dsn, autocommit=True, **extra)
    except psycopg.OperationalError as err:
        raise StoreUnavailableError(f"cannot connect to {describe(dsn)}: {err}") from err


def read_dictionary(dsn: str, codec: int) -> bytes:
    """A compression dictionary by id (for decoding workers: module level, so it pickles)."""
    with connect(dsn, readonly=True) as db:
        found = db.execute("SELECT data FROM codecs WHERE id = %s", (codec,)).fetchone()
    if found is None:
        raise LookupError(f"codec {codec} not in store {describe(dsn)}")
    return bytes(found[0])


class PostgresStore(PostgresOutbox):
    """Timeline store in one PostgreSQL database (outbox methods from ``PostgresOutbox``)."""

    def __init__(self, dsn: str, *, retention_days: int, readonly: bool = False) -> None:
        self.dsn = dsn
        self.location = describe(dsn)
        self.retention_days = retention_days
        self._readonly = readonly
        self._db = connect(dsn, readonly=readonly)
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
            self._db.close()
            raise
        self._codec = int(row[0]) if row and row[0] is not None else codecs.PLAIN
        self._codecs = codecs.Codecs(self._codec_bytes)
        self._samples: list[bytes] = []

    def dictionaries(self) -> Callable[[int], bytes]:
        return partial(read_dictionary, self.dsn)

    # -- writing -------------------------------------------------------------

    @property
    def codec(self) -> int:
        return self._codec

    @property
    def wants_samples(self) -> bool:
        return self._codec == codecs.PLAIN

    def write(
        self,
        batches: Sequence[Processed],
        alerts: Sequence[Alert] = (),
        routes: Routes | None = None,
    ) -> WriteResult:
        """One transaction: events (deduplicated) with their index text, quarantine,
        checkpoints, the alerts these events raised or updated, and their outbox rows."""
        if self._db.broken:
            self._db = connect(self.dsn)
        now = _now_us()
        rows = writing.sort_rows(batches, self._retention_floor())
        saved = (self._codec, list(self._samples), set(self._months))
        try:
            with self._db.transaction():
                # A change record version seen before made its event then.
                rows.drop(self._book(batches, now))
                fresh = rows.fresh
                self._partitions(fresh)
                inserted = self._insert(list(fresh.values()))
                # Keys held already: by the same event (a repeat) or another one.
                rows.settle(self._existing([key for key in fresh if key not in inserted]))
                minutes = writing.minute_counts(fresh.items())
                stored = len(fresh)
                for entry in rows.collisions:
                    placed = writing.probe(entry, self._eid_at, self._insert_one)
                    if placed is not None:
                        minutes[key_minute(placed), entry[3]] += 1
                    stored += placed is not None
                    rows.duplicates += placed is None
                quarantined = self._write_rest(batches, minutes, alerts, routes, now)
        except psycopg.OperationalError as err:
            self._codec, self._samples, self._months = saved
            raise StoreUnavailableError(f"{self.location}: {err}") from err
        except BaseException:
            # Forget what the rolled-back transaction made: partitions, dictionaries.
            self._codec, self._samples, self._months = saved
            raise
        return WriteResult(stored, rows.duplicates, quarantined, rows.expired)

    def _write_rest(
        self,
        batches: Sequence[Processed],
        minutes: Any,
        alerts: Sequence[Alert],
        routes: Routes | None,
        now: int,
    ) -> int:
        """Everything of a write but the events, in the same transaction."""
        with self._db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO minute_counts (minute, log_type, count) VALUES (%s, %s, %s)"
                " ON CONFLICT (minute, log_type)"
                " DO UPDATE SET count = minute_counts.count + excluded.count",
                [(minute, log_type, n) for (minute, log_type), n in minutes.items()],
            )
            quarantined = self._quarantine(batches, now)
            cursor.executemany(
                "INSERT INTO checkpoints (source, key, value, updated_at) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (source, key) DO UPDATE"
                " SET value = excluded.value, updated_at = excluded.updated_at",
                writing.checkpoint_rows(batches, now),
            )
        self._learn_codec(batches, now)
        pgalerts.upsert(self._db, alerts, now)
        if routes:
            enqueue(self._db, alerts, routes, now)
        return quarantined

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

    def _eid_at(self, key: int) -> int | None:
        found = self._db.execute("SELECT eid FROM events WHERE id = %s", (key,)).fetchone()
        return None if found is None else int(found[0])

    def _insert_one(self, key: int, entry: Entry) -> None:
        if month_of(key) not in self._months:
            self._months.add(pgschema.create_partition(self._db, key))
        source, (_, eid, codec, doc), text, log_type = entry
        self._insert([(source, (key, eid, codec, doc), text, log_type)])

    def _book(self, batches: Sequence[Processed], now: int) -> list[int]:
        """Keep change record versions; returns the event keys of versions already kept."""
        repeated = []
        for batch in batches:
            for key, entry in batch.changes:
                added = self._db.execute(
                    "INSERT INTO change_versions (id, revision, received_at, source, record)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (entry.id, entry.revision, now, batch.source, entry.record),
                ).rowcount
                if not added:
                    repeated.append(key)
                    continue
                # The highest version number wins; without numbers, the latest update.
                self._db.execute(
                    "INSERT INTO change_records (id, revision, version, updated, window_start,"
                    " window_end, state, record) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET revision = excluded.revision,"
                    " version = excluded.version, updated = excluded.updated,"
                    " window_start = excluded.window_start, window_end = excluded.window_end,"
                    " state = excluded.state, record = excluded.record"
                    " WHERE (coalesce(excluded.version, -1), excluded.updated)"
                    " >= (coalesce(change_records.version, -1), change_records.updated)",
                    (
                        entry.id,
                        entry.revision,
                        entry.version,
                        entry.updated_us,
                        entry.start_us,
                        entry.end_us,
                        entry.state,
                        entry.record,
                    ),
                )
        return repeated

    def _quarantine(self, batches: Sequence[Processed], now: int) -> int:
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

    def _learn_codec(self, batches: Sequence[Processed], now: int) -> None:
        """Train a dictionary from the first documents the store sees."""
        if self._codec != codecs.PLAIN or not writing.collect_samples(self._samples, batches):
            return
        data = codecs.train(self._samples)
        row = self._db.execute(
            "INSERT INTO codecs (created_at, data) VALUES (%s, %s) RETURNING id", (now, data)
        ).fetchone()
        self._codec = int(row[0]) if row else codecs.PLAIN
        self._samples = []

    # -- reading -------------------------------------------------------------

    def _codec_bytes(self, codec: int) -> bytes:
        row = self._db.execute("SELECT data FROM codecs WHERE id = %s", (codec,)).fetchone()
        if row is None:
            raise LookupError(f"codec {codec} missing from {self.location}")
        return bytes(row[0])

    def checkpoints(self, source: str) -> dict[str, JSON]:
        rows = self._db.execute("SELECT key, value FROM checkpoints WHERE source = %s", (source,))
        return {key: orjson.loads(value) for key, value in rows}

    def search(self, query: EventQuery) -> list[JSON]:
        return [found.document for found in self.page(query)]

    def page(self, query: EventQuery) -> list[Found]:
        low = key_floor(query.since) if query.since else 0
        high = key_ceiling(query.until) if query.until else (1 << 63) - 1
        if query.after is not None:
            if query.order == "newest":
                high = min(high, query.after - 1)
            else:
                low = max(low, query.after + 1)
        direction = "DESC" if query.order == "newest" else "ASC"
        match = pgsearch.query_of(query)
        if match == pgsearch.NOTHING:
            return []
        sql = f"SELECT {_COLUMNS} FROM events WHERE id BETWEEN %s AND %s"
        params: list[Any] = [low, high]
        if match is not None:
            sql += " AND search @@ %s::tsquery"
            params.append(match)
        sql += f" ORDER BY id {direction} LIMIT %s"
        params.append(query.limit)
        rows = self._db.execute(sql.encode(), params).fetchall()
        with cyclic_gc_paused():
            return [self._found(*row) for row in rows]

    def _found(self, key: int, source: str, codec: int, blob: bytes) -> Found:
        log_type, doc = stored.read(self._codecs.decompress(codec, blob), key_time(key))
        return Found(key, source, log_type, doc)

    def event(self, key: int) -> Found | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM events WHERE id = %s".encode(), (key,)
        ).fetchone()
        return None if row is None else self._found(*row)

    def histogram(
        self, since: datetime, until: datetime, bucket_minutes: int
    ) -> list[tuple[datetime, str, int]]:
        rows = self._db.execute(
            "SELECT minute / %(b)s * %(b)s AS bucket, log_type, sum(count) FROM minute_counts"
            " WHERE minute BETWEEN %(low)s AND %(high)s GROUP BY bucket, log_type"
            " ORDER BY bucket, log_type",
            {
                "b": bucket_minutes,
                "low": key_minute(key_floor(since)),
                "high": key_minute(key_ceiling(until)),
            },
        )
        return [
            (datetime.fromtimestamp(bucket * 60, UTC), log_type, int(n))
            for bucket, log_type, n in rows
        ]

    def interrupt(self) -> None:
        self._db.cancel_safe()

    def event_by_id(
        self, event_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> JSON | None:
        found = self.find_event(event_id, since=since, until=until)
        return found.document if found else None

    def find_event(
        self, event_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> Found | None:
        low = key_floor(since) if since else 0
        high = key_ceiling(until) if until else (1 << 63) - 1
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM events WHERE id BETWEEN %s AND %s AND eid = %s"
            " ORDER BY id LIMIT 1".encode(),
            (low, high, event_hash(event_id)),
        ).fetchone()
        return self._found(*row) if row else None

    def change_records(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[JSON]:
        low = int(since.timestamp() * 1e6) if since else -(1 << 62)
        high = int(until.timestamp() * 1e6) if until else 1 << 62
        rows = self._db.execute(
            "SELECT record FROM change_records WHERE window_end >= %s AND window_start <= %s"
            " ORDER BY window_start, id",
            (low, high),
        )
        return [orjson.loads(record) for (record,) in rows]

    def change_record(self, change_id: str) -> JSON | None:
        row = self._db.execute(
            "SELECT record FROM change_records WHERE id = %s", (change_id,)
        ).fetchone()
        return None if row is None else dict(orjson.loads(row[0]))

    def change_history(self, change_id: str) -> list[JSON]:
        rows = self._db.execute(
            "SELECT record FROM change_versions WHERE id = %s ORDER BY received_at, revision",
            (change_id,),
        )
        return [orjson.loads(record) for (record,) in rows]

    def alerts(
        self,
        *,
        since: datetime | None = None,
        rule: str | None = None,
        severities: Sequence[str] | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[Alert]:
        return pgalerts.select(
            self._db,
            since=since,
            rule=rule,
            severities=severities,
            limit=limit,
            newest_first=newest_first,
        )

    def alert(self, alert_id: str) -> Alert | None:
        return pgalerts.select_one(self._db, alert_id)

    def quarantine(self, *, source: str | None = None, limit: int = 100) -> list[QuarantineEntry]:
        sql = "SELECT id, at, source, origin, position, reason, raw, raw_size FROM quarantine"
        params: list[Any] = []
        if source is not None:
            sql += " WHERE source = %s"
            params.append(source)
        sql += " ORDER BY id DESC LIMIT %s"
        params.append(limit)
        return [
            QuarantineEntry(
                id=row[0],
                at=datetime.fromtimestamp(row[1] / 1e6, UTC),
                source=row[2],
                origin=row[3],
                position=row[4],
                reason=row[5],
                raw=bytes(row[6]),
                raw_size=row[7],
            )
            for row in self._db.execute(sql.encode(), params)
        ]

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
            cutoff_us = int((now - timedelta(days=self.retention_days)).timestamp() * 1e6)
            self._db.execute("DELETE FROM quarantine WHERE at < %s", (cutoff_us,))
            for ahead in (now, now + timedelta(days=32)):
                pgschema.create_partition(self._db, key_floor(ahead))
        self._months = pgschema.partitions(self._db)
        self.prune_deliveries(now - timedelta(days=self.retention_days))
        return deleted

    def count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def quarantine_count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM quarantine").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._db.close()
