"""The alert outbox in SQLite: one row per (alert, output) until it is delivered.

Rows are written in the transaction that stores the alert (``enqueue``), so an
alert is never raised without its deliveries queued.  A delivery worker leases
due rows, sends them and marks the outcome; leases live only as long as the
daemon (one SQLite daemon per store), so a restart lifts them and pending rows
resume.  Sent rows are kept as a record until retention prunes them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

from daemon.alert import Alert
from daemon.store.base import Delivery, DeliveryState, Routes

_COLUMNS = (
    "id, alert_id, output, alert, state, enqueued_at, budget_from, due_at, attempts, last_error"
)


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _at(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def enqueue(db: sqlite3.Connection, alerts: Sequence[Alert], routes: Routes, now_us: int) -> int:
    """Queue alerts for their routed outputs inside the caller's open transaction.

    An alert already pending for an output gets its newer snapshot (a count
    that grew); one already sent or failed is not queued again: the alert id is
    the receivers' idempotency key, a second copy would be dropped as a repeat.
    """
    rows = [
        (alert.id, output, orjson.dumps(alert.to_json()), now_us, now_us, now_us, now_us)
        for alert in alerts
        for output, accepts in routes.items()
        if accepts(alert)
    ]
    before = db.total_changes
    db.executemany(
        "INSERT INTO outbox (alert_id, output, alert, state, enqueued_at, budget_from, due_at,"
        " updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)"
        " ON CONFLICT (alert_id, output) DO UPDATE"
        " SET alert = excluded.alert, updated_at = excluded.updated_at"
        " WHERE outbox.state = 'pending'",
        rows,
    )
    return db.total_changes - before


class SqliteOutbox:
    """Outbox methods of ``SqliteStore`` (mixed in; uses its connection)."""

    _db: sqlite3.Connection

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _transaction(self, sql: str, rows: Sequence[tuple[object, ...]]) -> int:
        with self._write_transaction() as db:
            before = db.total_changes
            db.executemany(sql, rows)
            return db.total_changes - before

    def write_alerts(self, alerts: Sequence[Alert], routes: Routes) -> int:
        with self._write_transaction() as db:
            return enqueue(db, alerts, routes, time.time_ns() // 1000)

    def claim_deliveries(self, output: str, now: datetime, limit: int) -> list[Delivery]:
        with self._write_transaction() as db:
            found = db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE output = ? AND state = 'pending'"
                " AND due_at <= ? AND leased = 0 ORDER BY due_at, id LIMIT ?",
                (output, _us(now), limit),
            ).fetchall()
            db.executemany("UPDATE outbox SET leased = 1 WHERE id = ?", ((r[0],) for r in found))
        return [_delivery(row) for row in found]

    def release_deliveries(self, output: str) -> int:
        return self._transaction(
            "UPDATE outbox SET leased = 0 WHERE output = ? AND leased = 1", [(output,)]
        )

    def next_due(self, output: str) -> datetime | None:
        row = self._db.execute(
            "SELECT min(due_at) FROM outbox WHERE output = ? AND state = 'pending' AND leased = 0",
            (output,),
        ).fetchone()
        return _at(row[0]) if row and row[0] is not None else None

    def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        self._transaction(
            "UPDATE outbox SET state = 'sent', leased = 0, attempts = attempts + 1,"
            " last_error = NULL, updated_at = ? WHERE id = ?",
            [(_us(now), row_id) for row_id in ids],
        )

    def mark_retry(self, ids: Sequence[int], due: datetime, error: str, now: datetime) -> None:
        self._transaction(
            "UPDATE outbox SET leased = 0, attempts = attempts + 1, due_at = ?, last_error = ?,"
            " updated_at = ? WHERE id = ?",
            [(_us(due), error, _us(now), row_id) for row_id in ids],
        )

    def mark_held(self, ids: Sequence[int], due: datetime, now: datetime) -> None:
        self._transaction(
            "UPDATE outbox SET leased = 0, due_at = ?, updated_at = ? WHERE id = ?",
            [(_us(due), _us(now), row_id) for row_id in ids],
        )

    def mark_failed(self, ids: Sequence[int], error: str, now: datetime) -> None:
        self._transaction(
            "UPDATE outbox SET state = 'failed', leased = 0, last_error = ?, updated_at = ?"
            " WHERE id = ?",
            [(error, _us(now), row_id) for row_id in ids],
        )

    def deliveries(
        self, state: DeliveryState, *, output: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        sql = f"SELECT {_COLUMNS} FROM outbox WHERE state = ?"
        params: list[object] = [state]
        if output is not None:
            sql += " AND output = ?"
            params.append(output)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return [_delivery(row) for row in self._db.execute(sql, params)]

    def alert_deliveries(self, alert_id: str) -> list[Delivery]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE alert_id = ? ORDER BY output", (alert_id,)
        )
        return [_delivery(row) for row in rows]

    def delivery_counts(self) -> dict[tuple[str, DeliveryState], int]:
        rows = self._db.execute("SELECT output, state, count(*) FROM outbox GROUP BY 1, 2")
        return {(output, state): count for output, state, count in rows}

    def retry_deliveries(self, ids: Sequence[int] | None, now: datetime) -> int:
        stamp = _us(now)
        update = (
            "UPDATE outbox SET state = 'pending', leased = 0, attempts = 0, due_at = ?,"
            " budget_from = ?, updated_at = ? WHERE state = 'failed'"
        )
        if ids is None:
            return self._transaction(update, [(stamp, stamp, stamp)])
        return self._transaction(update + " AND id = ?", [(stamp, stamp, stamp, i) for i in ids])

    def prune_deliveries(self, before: datetime) -> int:
        """Forget sent rows last touched before ``before`` (failed ones stay until retried)."""
        return self._transaction(
            "DELETE FROM outbox WHERE state = 'sent' AND updated_at < ?", [(_us(before),)]
        )


def _delivery(row: Any) -> Delivery:
    row_id, alert_id, output, alert, state, enqueued, budget, due, attempts, error = row
    return Delivery(
        id=row_id,
        alert_id=alert_id,
        output=output,
        alert=orjson.loads(alert),
        state=state,
        enqueued_at=_at(enqueued),
        budget_from=_at(budget),
        due_at=_at(due),
        attempts=attempts,
        last_error=error,
    )
