"""The alert outbox in SQLite: one row per (alert, output) until it is delivered.

Rows are written in the transaction that stores the alert (``enqueue``), so an
alert is never raised without its deliveries queued.  Each delivery round
records the outcomes of earlier sends and leases the due rows of every output
in one transaction; leases live only as long as the daemon (one SQLite daemon
per store), so a restart lifts them and pending rows resume.  Sent rows are
kept as a record until retention prunes them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

from daemon.alert import Alert
from daemon.store.base import Delivery, DeliveryRound, DeliveryState, Outcome

_COLUMNS = (
    "id, alert_id, output, alert, state, enqueued_at, budget_from, due_at, attempts, last_error"
)


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _at(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def enqueue(db: sqlite3.Connection, deliveries: Sequence[tuple[Alert, str]], now_us: int) -> int:
    """Queue (alert, output) pairs inside the caller's open transaction.

    An alert already pending for an output gets its newer snapshot (a count
    that grew); one already sent or failed is not queued again: the alert id is
    the receivers' idempotency key, a second copy would be dropped as a repeat.
    """
    rows = [
        (alert.id, output, alert.document(), now_us, now_us, now_us, now_us)
        for alert, output in deliveries
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


class OutboxQueries:
    """The outbox statements both engines share, written with ``?`` parameters.

    Mixed into each engine's outbox, which runs them through its ``_rows``
    and ``_transaction``.
    """

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _transaction(self, sql: str, rows: Sequence[tuple[object, ...]]) -> int:
        raise NotImplementedError

    def release_deliveries(self, output: str) -> int:
        return self._transaction(
            "UPDATE outbox SET leased = 0 WHERE output = ? AND leased = 1", [(output,)]
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
        return [_delivery(row) for row in self._rows(sql, params)]

    def alert_deliveries(self, alert_id: str) -> list[Delivery]:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM outbox WHERE alert_id = ? ORDER BY output", (alert_id,)
        )
        return [_delivery(row) for row in rows]

    def delivery_counts(self) -> dict[tuple[str, DeliveryState], int]:
        rows = self._rows("SELECT output, state, count(*) FROM outbox GROUP BY 1, 2")
        return {(output, state): int(count) for output, state, count in rows}

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


class SqliteOutbox(OutboxQueries):
    """Outbox methods of ``SqliteStore`` (mixed in; uses its connection)."""

    _db: sqlite3.Connection
    _write_lock: threading.Lock
    """Held around every write transaction of this database by this process."""

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        with self._write_lock:
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

    def write_alerts(self, deliveries: Sequence[tuple[Alert, str]]) -> int:
        with self._write_transaction() as db:
            return enqueue(db, deliveries, time.time_ns() // 1000)

    def delivery_round(
        self, outcomes: Sequence[Outcome], wants: Mapping[str, int], now: datetime
    ) -> DeliveryRound:
        with self._write_transaction() as db:
            for outcome in outcomes:
                _record(db, outcome)
            wanted = [(output, limit) for output, limit in wants.items() if limit > 0]
            if not wanted:
                return DeliveryRound({}, None)
            # One query for every output: each part uses the (output, state, due_at) index.
            part = (
                f"SELECT * FROM (SELECT {_COLUMNS} FROM outbox WHERE output = ?"
                " AND state = 'pending' AND due_at <= ? AND leased = 0 ORDER BY due_at, id LIMIT ?)"
            )
            stamp = _us(now)
            found = db.execute(
                " UNION ALL ".join([part] * len(wanted)),
                [value for output, limit in wanted for value in (output, stamp, limit)],
            ).fetchall()
            db.executemany("UPDATE outbox SET leased = 1 WHERE id = ?", ((r[0],) for r in found))
            marks = ", ".join("?" * len(wanted))
            (due,) = db.execute(
                "SELECT min(due_at) FROM outbox WHERE state = 'pending' AND leased = 0"
                f" AND output IN ({marks})",
                [output for output, _ in wanted],
            ).fetchone()
        leased: dict[str, list[Delivery]] = {}
        for row in found:
            delivery = _delivery(row)
            leased.setdefault(delivery.output, []).append(delivery)
        return DeliveryRound(leased, _at(due) if due is not None else None)


OUTCOME_SQL = {
    # Named parameters: :id, :at, :due, :error (see outcome_rows).
    "sent": "UPDATE outbox SET state = 'sent', leased = 0, attempts = attempts + 1,"
    " last_error = NULL, updated_at = :at WHERE id = :id",
    "retry": "UPDATE outbox SET leased = 0, attempts = attempts + 1, due_at = :due,"
    " last_error = :error, updated_at = :at WHERE id = :id",
    "held": "UPDATE outbox SET leased = 0, due_at = :due, updated_at = :at WHERE id = :id",
    "failed": "UPDATE outbox SET state = 'failed', leased = 0, last_error = :error,"
    " updated_at = :at WHERE id = :id",
}


def outcome_rows(outcome: Outcome) -> list[dict[str, Any]]:
    """The named parameters of ``OUTCOME_SQL[outcome.state]``, one set per row."""
    at = _us(outcome.at)
    due = _us(outcome.due) if outcome.due is not None else at
    return [{"id": row_id, "at": at, "due": due, "error": outcome.error} for row_id in outcome.ids]


def _record(db: sqlite3.Connection, outcome: Outcome) -> None:
    db.executemany(OUTCOME_SQL[outcome.state], outcome_rows(outcome))


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
