"""The read methods both store engines share.

The tables are the same in SQLite and PostgreSQL, so most reads are the
same statements: they are written here with SQLite's ``?`` parameters, and
each engine runs them through ``_rows`` (PostgreSQL turns them into psycopg's
``%s`` form with ``as_format``).  What differs (text search, the write path)
stays in the engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from daemon.alert import Alert
from daemon.gcpause import cyclic_gc_paused
from daemon.store import alerts as alert_rows
from daemon.store import codec as codecs
from daemon.store import stored
from daemon.store.base import JSON, EventQuery, Found, QuarantineEntry
from daemon.store.keys import event_hash, key_ceiling, key_floor, key_minute, key_time
from daemon.store.transfer import Table
from daemon.store.units import Normalize

_EVENT_COLUMNS = "id, source, codec, doc"


def as_format(sql: str) -> bytes:
    """A statement's ``?`` parameters as psycopg's ``%s`` (the statements hold no other ``?``)."""
    return sql.replace("%", "%%").replace("?", "%s").encode()


def bounds(query: EventQuery) -> tuple[int, int]:
    """The lowest and highest row key a query's time range and page position allow."""
    low = key_floor(query.since) if query.since else 0
    high = key_ceiling(query.until) if query.until else (1 << 63) - 1
    if query.after is not None:
        if query.order == "newest":
            high = min(high, query.after - 1)
        else:
            low = max(low, query.after + 1)
    return low, high


def events_between(direction: str) -> str:
    """Events in a key range, newest or oldest first, up to a limit (no text filter)."""
    return (
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE id BETWEEN ? AND ?"
        f" ORDER BY id {direction} LIMIT ?"
    )


class StoreReads:
    """Reads of a store, over ``_rows`` of the engine (mixed into both stores)."""

    _codecs: codecs.Codecs
    _normalize: Normalize | None
    """Makes ECS documents of stored records on read (handed in by whoever opens the store)."""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of a statement with ``?`` parameters."""
        raise NotImplementedError

    def _first(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _found_all(self, rows: list[tuple[int, str, int, bytes]]) -> list[Found]:
        with cyclic_gc_paused():
            return [self._found(*row) for row in rows]

    def _found(self, key: int, source: str, codec: int, blob: bytes) -> Found:
        log_type, doc = stored.read(
            self._codecs.decompress(codec, blob), key_time(key), self._normalize
        )
        return Found(key, source, log_type, doc)

    def checkpoints(self, source: str) -> dict[str, JSON]:
        rows = self._rows("SELECT key, value FROM checkpoints WHERE source = ?", (source,))
        return {key: orjson.loads(value) for key, value in rows}

    def checkpoint_times(self, source: str) -> dict[str, datetime]:
        rows = self._rows("SELECT key, updated_at FROM checkpoints WHERE source = ?", (source,))
        return {key: datetime.fromtimestamp(us / 1e6, UTC) for key, us in rows}

    def search(self, query: EventQuery) -> list[JSON]:
        return [found.document for found in self.page(query)]

    def page(self, query: EventQuery) -> list[Found]:
        raise NotImplementedError

    def event(self, key: int) -> Found | None:
        row = self._first(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (key,))
        return None if row is None else self._found(*row)

    def histogram(
        self, since: datetime, until: datetime, bucket_minutes: int
    ) -> list[tuple[datetime, str, int]]:
        rows = self._rows(
            "SELECT minute / ? * ? AS bucket, log_type, sum(count) FROM minute_counts"
            " WHERE minute BETWEEN ? AND ? GROUP BY bucket, log_type ORDER BY bucket, log_type",
            (
                bucket_minutes,
                bucket_minutes,
                key_minute(key_floor(since)),
                key_minute(key_ceiling(until)),
            ),
        )
        return [
            (datetime.fromtimestamp(bucket * 60, UTC), log_type, int(n))
            for bucket, log_type, n in rows
        ]

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
        row = self._first(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE id BETWEEN ? AND ? AND eid = ?"
            " ORDER BY id LIMIT 1",
            (low, high, event_hash(event_id)),
        )
        return self._found(*row) if row else None

    def change_records(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[JSON]:
        low = int(since.timestamp() * 1e6) if since else -(1 << 62)
        high = int(until.timestamp() * 1e6) if until else 1 << 62
        rows = self._rows(
            "SELECT record FROM change_records WHERE window_end >= ? AND window_start <= ?"
            " ORDER BY window_start, id",
            (low, high),
        )
        return [orjson.loads(record) for (record,) in rows]

    def change_record(self, change_id: str) -> JSON | None:
        row = self._first("SELECT record FROM change_records WHERE id = ?", (change_id,))
        return None if row is None else dict(orjson.loads(row[0]))

    def change_history(self, change_id: str) -> list[JSON]:
        rows = self._rows(
            "SELECT record FROM change_versions WHERE id = ? ORDER BY received_at, revision",
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
        sql, params = alert_rows.select_query(
            since=since, rule=rule, severities=severities, limit=limit, newest_first=newest_first
        )
        return [alert_rows.decode(row[0]) for row in self._rows(sql, params)]

    def alert(self, alert_id: str) -> Alert | None:
        row = self._first("SELECT doc FROM alerts WHERE id = ?", (alert_id,))
        return None if row is None else alert_rows.decode(row[0])

    def quarantine(self, *, source: str | None = None, limit: int = 100) -> list[QuarantineEntry]:
        sql = "SELECT id, at, source, origin, position, reason, raw, raw_size FROM quarantine"
        params: list[Any] = []
        if source is not None:
            sql += " WHERE source = ?"
            params.append(source)
        sql += " ORDER BY id DESC LIMIT ?"
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
            for row in self._rows(sql, params)
        ]

    def count(self) -> int:
        row = self._first("SELECT count(*) FROM events")
        return int(row[0]) if row else 0

    def quarantine_count(self) -> int:
        row = self._first("SELECT count(*) FROM quarantine")
        return int(row[0]) if row else 0

    # -- copying the store (daemon/migrate_store.py) -------------------------

    def export_rows(self, table: Table, position: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` rows of ``table`` in key order, from ``position``: the last id
        read for a numbered table, the rows read so far for the others."""
        params = (position, limit) if table.numbered else (limit, position)
        return [tuple(row) for row in self._rows(table.select(), params)]

    def table_count(self, table: Table) -> int:
        """Rows in ``table``."""
        row = self._first(f"SELECT count(*) FROM {table.read_from}")
        return int(row[0]) if row else 0
