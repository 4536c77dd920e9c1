"""The embedded timeline store: one SQLite file in WAL mode.

Rows are keyed by event time (``keys.py``), so the table is its own time
index and a repeated event finds its key taken.  One connection writes (the
pipeline's writer thread); readers open their own connections, which WAL lets
run beside the writer.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from daemon.store import alert_events, placing, schema, transfer, writing
from daemon.store import alerts as alert_rows
from daemon.store import codec as codecs
from daemon.store.base import EventQuery, Found, WriteResult
from daemon.store.keys import (
    key_minute,
    month_of,
    month_span,
)
from daemon.store.outbox import SqliteOutbox, enqueue
from daemon.store.reads import StoreReads, bounds, events_between
from daemon.store.text import TAG_FIELDS, query_words, tag
from daemon.store.units import Batch, Entry, FeedMovedError, Normalize, Round, Text

_INSERT_EVENT = "INSERT INTO events (id, eid, source, codec, doc) VALUES (?,?,?,?,?)"
_STATE = "SELECT key, value FROM correlator_state"
_HELD = "SELECT value FROM held_hits WHERE correlation = ? AND grp = ?"
_CORRELATOR = "correlator"
"""The name of the correlator's place in ``feed_position``."""
_LOOKUP_CHUNK = 500

log = structlog.get_logger()
# Identifiers people search for (IPs, dotted user names, e-mails, instance ids)
# stay single tokens; ARNs split at ':' and '/' so their parts are searchable.
_TOKENIZER = "unicode61 remove_diacritics 2 tokenchars '._-@'"


def _now_us() -> int:
    return time.time_ns() // 1000


_WRITE_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    """One lock per database file for this process's write transactions.

    The writer, the correlator and delivery each have a connection of their own to the
    same file.  SQLite makes a transaction that finds the file locked sleep and try
    again (the busy timeout), in steps of up to 100 ms, so under steady writes from
    both the writer and the correlator much time went to sleeping; taking turns on a
    lock hands the file over the moment the other commits.  Other processes (CLI
    commands) still meet the busy timeout."""
    with _LOCKS_LOCK:
        return _WRITE_LOCKS.setdefault(path.resolve(), threading.Lock())


def read_dictionary(path: Path, codec: int) -> bytes:
    """A compression dictionary by id (for decoding workers: module level, so it pickles)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        found = db.execute("SELECT data FROM codecs WHERE id = ?", (codec,)).fetchone()
    if found is None:
        raise LookupError(f"codec {codec} not in store {path}")
    return bytes(found[0])


class SqliteStore(SqliteOutbox, StoreReads):
    """Timeline store in one SQLite file (outbox methods from ``SqliteOutbox``, reads from
    ``StoreReads``)."""

    def __init__(
        self,
        path: Path,
        *,
        retention_days: int,
        readonly: bool = False,
        normalize: Normalize | None = None,
    ) -> None:
        self.path = path
        self._normalize = normalize
        self._write_lock = _write_lock(path)
        self.location = str(path)
        self.retention_days = retention_days
        self._readonly = readonly
        self._closed = False
        if readonly:
            if not path.exists():
                raise FileNotFoundError(
                    f"no store at {path}; run 'auditcorr run' or 'backfill' first"
                )
            self._db = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA page_size = 8192")
            self._db.execute("PRAGMA journal_mode = WAL")
            found = schema.version_of(self._db)
            if 0 < found < len(schema.MIGRATIONS):
                self._back_up(found)
            schema.migrate(self._db)
        self._db.execute("PRAGMA synchronous = NORMAL")
        # 16 MiB: rows arrive in key order, so appends touch few pages.
        self._db.execute("PRAGMA cache_size = -16384")
        self._db.execute("PRAGMA temp_store = MEMORY")
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._codecs = codecs.Codecs(self._codec_bytes)
        self._months = self._fts_months()
        row = self._db.execute("SELECT max(id) FROM codecs").fetchone()
        self._codec = int(row[0]) if row and row[0] is not None else codecs.PLAIN
        self._samples: list[bytes] = []

    def dictionaries(self) -> Callable[[int], bytes]:
        return partial(read_dictionary, self.path)

    def _back_up(self, version: int) -> Path:
        """Copy the store before a schema migration, so the older auditcorr can be restored."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.schema{version}-{stamp}.bak")
        try:
            with contextlib.closing(sqlite3.connect(target)) as copy:
                # The online backup API copies a consistent snapshot, WAL included.
                self._db.backup(copy)
        except sqlite3.Error as err:
            target.unlink(missing_ok=True)
            raise schema.StoreUpgradeError(
                f"cannot back up {self.path} to {target} before upgrading its schema: {err}"
            ) from err
        log.info("store_backed_up", path=str(target), schema_version=version)
        return target

    # -- writing -------------------------------------------------------------

    @property
    def codec(self) -> int:
        return self._codec

    @property
    def wants_samples(self) -> bool:
        return self._codec == codecs.PLAIN

    def write(self, batches: Sequence[Batch]) -> WriteResult:
        """One transaction: events (deduplicated), their index entries, quarantine,
        checkpoints, change record versions, and the feed row of the events stored."""
        db = self._db
        now = _now_us()
        rows = writing.sort_rows(batches, self._retention_floor())
        saved = (self._codec, list(self._samples))
        try:
            with self._writing():
                # A change record version seen before made its event then.
                repeated, kept = writing.book(batches, now, self._count_rows)
                rows.drop(repeated)
                rows.crowd(self._placing)
                rows.settle(self._existing(list(rows.fresh)))
                fresh = rows.fresh
                db.executemany(
                    _INSERT_EVENT,
                    (
                        (key, eid, source, codec, doc)
                        for source, (key, eid, codec, doc), _, _ in fresh.values()
                    ),
                )
                self._index((key, entry[2]) for key, entry in fresh.items())
                minutes = writing.minute_counts(fresh.items())
                minutes += rows.place_collisions(self._placing)
                self._count_minutes(minutes)
                quarantined = self._quarantine(batches, now)
                db.executemany(
                    "INSERT INTO checkpoints (source, key, value, updated_at) VALUES (?,?,?,?)"
                    " ON CONFLICT (source, key) DO UPDATE"
                    " SET value = excluded.value, updated_at = excluded.updated_at",
                    writing.checkpoint_rows(batches, now),
                )
                self._learn_codec(batches, now)
                db.executemany(
                    "INSERT INTO ingest_feed (at, entry) VALUES (?, ?)",
                    (
                        (now, entry)
                        for entry in writing.feed_entries(batches, rows.stored_eids(), kept)
                    ),
                )
        except BaseException:
            # Forget the dictionary the rolled-back transaction made.
            self._codec, self._samples = saved
            raise
        return WriteResult.of(rows, quarantined)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; when it rolls back, forget the text tables it made."""
        try:
            with self._write_transaction() as db:
                yield db
        except BaseException:
            self._months = self._fts_months()
            raise

    # -- the correlator's feed and state -------------------------------------

    def feed_after(self, position: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._db.execute(
            "SELECT seq, entry FROM ingest_feed WHERE seq > ? ORDER BY seq LIMIT ?",
            (position, limit),
        )
        return [(int(seq), bytes(entry)) for seq, entry in rows]

    def correlation_state(self) -> tuple[int, dict[str, bytes]]:
        db = self._db
        db.execute("BEGIN")  # one snapshot of both
        try:
            found = db.execute(
                "SELECT position FROM feed_position WHERE name = ?", (_CORRELATOR,)
            ).fetchone()
            state = {key: bytes(value) for key, value in db.execute(_STATE)}
        finally:
            db.execute("COMMIT")
        return (int(found[0]) if found else 0), state

    def held_hits(self, groups: Collection[tuple[str, str]]) -> dict[tuple[str, str], list[bytes]]:
        found: dict[tuple[str, str], list[bytes]] = {}
        db = self._db
        for key in groups:
            rows = db.execute(_HELD, key).fetchall()
            if rows:
                found[key] = [bytes(value) for (value,) in rows]
        return found

    def commit_round(self, done: Round) -> None:
        now = _now_us()
        with self._writing() as db:
            found = db.execute(
                "SELECT position FROM feed_position WHERE name = ?", (_CORRELATOR,)
            ).fetchone()
            if (int(found[0]) if found else 0) != done.after:
                raise FeedMovedError(f"the feed position of {self.location} moved on")
            db.execute(
                "INSERT INTO feed_position (name, position) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (_CORRELATOR, done.position),
            )
            db.executemany(
                "INSERT INTO correlator_state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [(key, value) for key, value in done.state.items() if value is not None],
            )
            db.executemany(
                "DELETE FROM correlator_state WHERE key = ?",
                [(key,) for key, value in done.state.items() if value is None],
            )
            self._hold(done)
            self._store_alerts(done, now)

    def _hold(self, done: Round) -> None:
        """What the round's groups hold or let go (in its transaction)."""
        db = self._db
        db.executemany(
            "INSERT INTO held_hits (correlation, grp, hit, at, value) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (correlation, grp, hit) DO UPDATE"
            " SET at = excluded.at, value = excluded.value",
            [row for row in done.held if row[4] is not None],
        )
        db.executemany(
            "DELETE FROM held_hits WHERE correlation = ? AND grp = ? AND hit = ?",
            [row[:3] for row in done.held if row[4] is None],
        )
        db.executemany(
            "DELETE FROM held_hits WHERE correlation = ? AND at < ?", done.expired.items()
        )
        if done.correlations is not None:
            kept = ",".join("?" * len(done.correlations))
            db.execute(
                f"DELETE FROM held_hits WHERE correlation NOT IN ({kept})",
                tuple(done.correlations),
            )

    def _store_alerts(self, done: Round, now: int) -> None:
        """The round's alerts, their timeline entries and outbox rows (in its transaction)."""
        alert_rows.upsert(self._db, done.alerts, now)
        compress = self._codecs.compressor(self._codec).compress
        self._count_minutes(alert_events.place(done.entries, self._codec, compress, self._placing))
        enqueue(self._db, done.deliveries, now)

    def prune_feed(self) -> int:
        return int(
            self._db.execute(
                "DELETE FROM ingest_feed WHERE seq <= (SELECT coalesce(max(position), 0)"
                " FROM feed_position WHERE name = ?)",
                (_CORRELATOR,),
            ).rowcount
        )

    def _existing(self, keys: list[int]) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.extend(
                self._db.execute(f"SELECT id, eid FROM events WHERE id IN ({marks})", chunk)
            )
        return found

    @property
    def _placing(self) -> placing.Access:
        return placing.Access(
            self._rows, self._db.executemany, self._existing, self._insert, crowd=True
        )

    def _insert(self, placed: list[tuple[int, Entry]]) -> set[int]:
        """Store events on the keys paired with them (free: one writer, inside its
        transaction)."""
        self._db.executemany(
            _INSERT_EVENT,
            (
                (key, eid, source, codec, doc)
                for key, (source, (_, eid, codec, doc), _, _) in placed
            ),
        )
        self._index((key, entry[2]) for key, entry in placed)
        return {key for key, _ in placed}

    def _index(self, entries: Iterable[tuple[int, Text]]) -> None:
        by_month: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        month, low, high = "", 0, -1
        for key, (text, tags) in entries:
            if not low <= key <= high:
                month, low, high = month_span(key)
            by_month[month].append((key, text, tags))
        for month, rows in by_month.items():
            if month not in self._months:
                self._db.execute(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS fts_{month} USING fts5"
                    f"(text, tags, content='', columnsize=0, tokenize=\"{_TOKENIZER}\")"
                )
                # Merge segments in larger steps: less work per insert while
                # ingesting; queries stay fast (see docs/PERFORMANCE.md).
                self._db.execute(
                    f"INSERT INTO fts_{month} (fts_{month}, rank) VALUES ('automerge', 8)"
                )
                self._months.add(month)
            self._db.executemany(
                f"INSERT INTO fts_{month} (rowid, text, tags) VALUES (?, ?, ?)", rows
            )

    def _count_minutes(self, minutes: Counter[tuple[int, str]]) -> None:
        self._db.executemany(
            "INSERT INTO minute_counts (minute, log_type, count) VALUES (?,?,?)"
            " ON CONFLICT (minute, log_type) DO UPDATE SET count = count + excluded.count",
            ((minute, log_type, n) for (minute, log_type), n in minutes.items()),
        )

    def _quarantine(self, batches: Sequence[Batch], now: int) -> int:
        before = self._db.total_changes
        self._db.executemany(
            "INSERT OR IGNORE INTO quarantine (at, source, origin, position, reason, raw, raw_size)"
            " VALUES (?,?,?,?,?,?,?)",
            writing.quarantine_rows(batches, now),
        )
        return self._db.total_changes - before

    def _learn_codec(self, batches: Sequence[Batch], now: int) -> None:
        """Train a dictionary from the first documents the store sees."""
        if self._codec != codecs.PLAIN or not writing.collect_samples(self._samples, batches):
            return
        data = codecs.train(self._samples)
        cursor = self._db.execute(
            "INSERT INTO codecs (created_at, data) VALUES (?, ?)", (now, data)
        )
        self._codec = int(cursor.lastrowid or 0)
        self._samples = []

    def import_rows(
        self, statements: Sequence[transfer.Statement], events: Sequence[Entry]
    ) -> None:
        """One transaction of a store copy: ``events`` as they were stored elsewhere (same
        keys, codecs and documents) with their index, then ``statements``."""
        with self._writing() as db:
            db.executemany(
                _INSERT_EVENT,
                ((key, eid, source, codec, doc) for source, (key, eid, codec, doc), _, _ in events),
            )
            self._index((entry[1][0], entry[2]) for entry in events)
            transfer.run(db.execute, db.executemany, statements)

    # -- reading -------------------------------------------------------------

    def _codec_bytes(self, codec: int) -> bytes:
        row = self._db.execute("SELECT data FROM codecs WHERE id = ?", (codec,)).fetchone()
        if row is None:
            raise LookupError(f"codec {codec} missing from {self.path}")
        return bytes(row[0])

    def _fts_months(self) -> set[str]:
        rows = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'fts_[0-9]*'"
            " AND name NOT GLOB 'fts_*_*'"
        )
        return {name.removeprefix("fts_") for (name,) in rows}

    def page(self, query: EventQuery) -> list[Found]:
        low, high = bounds(query)
        direction = "DESC" if query.order == "newest" else "ASC"
        match = match_expression(query)
        if match is None:
            return self._found_all(self._rows(events_between(direction), (low, high, query.limit)))
        rows: list[tuple[int, str, int, bytes]] = []
        months = sorted(
            (m for m in self._fts_months() if month_of(low) <= m <= month_of(high)),
            reverse=query.order == "newest",
        )
        for month in months:
            sql = (
                f"SELECT e.id, e.source, e.codec, e.doc FROM fts_{month} f JOIN events e"
                f" ON e.id = f.rowid WHERE fts_{month} MATCH ? AND f.rowid BETWEEN ? AND ?"
                f" ORDER BY f.rowid {direction} LIMIT ?"
            )
            params = (match, low, high, query.limit - len(rows))
            rows.extend(self._db.execute(sql, params))
            if len(rows) >= query.limit:
                break
        return self._found_all(rows)

    def _count_rows(self, sql: str, params: Sequence[Any]) -> int:
        return int(self._db.execute(sql, params).rowcount)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._db.execute(sql, params).fetchall()

    def interrupt(self) -> None:
        self._db.interrupt()

    # -- upkeep --------------------------------------------------------------

    def _retention_floor(self, now: datetime | None = None) -> int:
        return writing.retention_floor(self.retention_days, now)

    def prune(self, now: datetime) -> int:
        """Delete expired events and quarantine entries; drop whole expired months of text."""
        floor = self._retention_floor(now)
        if floor == 0:
            return 0
        with self._writing() as db:
            deleted = db.execute("DELETE FROM events WHERE id < ?", (floor,)).rowcount
            db.execute("DELETE FROM minute_counts WHERE minute < ?", (key_minute(floor),))
            placing.prune(self._count_rows, floor, crowd=True)
            cutoff_us = int((now - timedelta(days=self.retention_days)).timestamp() * 1e6)
            db.execute("DELETE FROM quarantine WHERE at < ?", (cutoff_us,))
            # A month's text table goes once the whole month is past the floor;
            # until then its stale entries find no event row and drop out of joins.
            for month in sorted(self._fts_months()):
                if month < month_of(floor):
                    db.execute(f"DROP TABLE fts_{month}")
                    self._months.discard(month)
        self.prune_deliveries(now - timedelta(days=self.retention_days))
        return deleted

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._readonly:
            self._db.execute("PRAGMA optimize")
        self._db.close()


def match_expression(query: EventQuery) -> str | None:
    """The FTS5 expression for a query's text and field filters, or None for neither."""
    parts = [
        f"tags : {tag(name, value)}"
        for name in TAG_FIELDS
        if (value := getattr(query, name)) is not None
    ]
    if query.text:
        parts.append(f"text : ({text_expression(query.text)})")
    return " AND ".join(parts) if parts else None


def text_expression(text: str) -> str:
    """Turn what a person types into FTS5 syntax: every word must occur.

    Each word is quoted, so punctuation is literal (``arn:aws:iam::1:role/x``
    becomes a phrase of its parts); a trailing ``*`` asks for a prefix.
    """
    terms = [
        '"' + literal.replace('"', '""') + '"' + (" *" if prefix else "")
        for literal, prefix in query_words(text)
    ]
    return " AND ".join(terms) if terms else '""'
