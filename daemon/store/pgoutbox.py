"""The alert outbox in PostgreSQL: one row per (alert, output) until it is delivered.

The same rows and states as the SQLite outbox (``outbox.py``).  A round's
lease skips rows another connection holds (``FOR UPDATE SKIP LOCKED``), so two
delivery workers never lease the same row.  Several daemons share one outbox,
so a lease names its holder (``leased_by``, the cluster member) and expires
(``lease_until``): a daemon lifts only its own leases when it starts, and rows
leased by one that died go out again once their lease runs out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg

from daemon.alert import Alert
from daemon.store.base import Delivery, DeliveryRound, Outcome
from daemon.store.outbox import (
    _COLUMNS,
    OUTCOME_SQL,
    OutboxQueries,
    _at,
    _delivery,
    _us,
    outcome_rows,
)
from daemon.store.reads import as_format

LEASE_SECS = 300
"""How long a leased delivery is held for its holder: longer than any send takes."""

_PG_OUTCOME_SQL = {
    state: re.sub(r":(\w+)", r"%(\1)s", sql).encode() for state, sql in OUTCOME_SQL.items()
}
"""The SQLite outcome statements with psycopg's named parameters."""


def enqueue(db: psycopg.Connection, deliveries: Sequence[tuple[Alert, str]], now_us: int) -> int:
    """Queue (alert, output) pairs inside the caller's open transaction.

    As in SQLite: a pending row gets the newer snapshot, a sent or failed one
    is left alone (the alert id is the receivers' idempotency key).
    """
    rows = [
        (alert.id, output, alert.document(), now_us, now_us, now_us, now_us)
        for alert, output in deliveries
    ]
    if not rows:
        return 0
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO outbox (alert_id, output, alert, state, enqueued_at, budget_from,"
            " due_at, updated_at) VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s)"
            " ON CONFLICT (alert_id, output) DO UPDATE"
            " SET alert = excluded.alert, updated_at = excluded.updated_at"
            " WHERE outbox.state = 'pending'",
            rows,
        )
        return max(cursor.rowcount, 0)


class PostgresOutbox(OutboxQueries):
    """Outbox methods of ``PostgresStore`` (mixed in; uses its connection)."""

    member: str

    if TYPE_CHECKING:

        @property
        def _db(self) -> psycopg.Connection:
            """The store's connection, reopened when broken (``PostgresStore._db``)."""

    def _transaction(self, sql: str, rows: Sequence[tuple[object, ...]]) -> int:
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.executemany(as_format(sql), rows)
            return max(cursor.rowcount, 0)

    def write_alerts(self, deliveries: Sequence[tuple[Alert, str]]) -> int:
        with self._db.transaction():
            return enqueue(self._db, deliveries, time.time_ns() // 1000)

    def delivery_round(
        self, outcomes: Sequence[Outcome], wants: Mapping[str, int], now: datetime
    ) -> DeliveryRound:
        wanted = [(output, limit) for output, limit in wants.items() if limit > 0]
        leased: dict[str, list[Delivery]] = {}
        with self._db.transaction(), self._db.cursor() as cursor:
            for outcome in outcomes:
                cursor.executemany(_PG_OUTCOME_SQL[outcome.state], outcome_rows(outcome))
            if not wanted:
                return DeliveryRound({}, None)
            now_us = _us(now)
            for output, limit in wanted:
                found = cursor.execute(
                    "UPDATE outbox SET leased = 1, leased_by = %s, lease_until = %s"
                    " WHERE id IN (SELECT id FROM outbox WHERE output = %s AND state = 'pending'"
                    " AND due_at <= %s AND (leased = 0 OR lease_until < %s)"
                    " ORDER BY due_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
                    f" RETURNING {_COLUMNS}".encode(),
                    (
                        self.member,
                        now_us + LEASE_SECS * 1_000_000,
                        output,
                        now_us,
                        now_us,
                        limit,
                    ),
                ).fetchall()
                if found:
                    # RETURNING keeps no order.
                    leased[output] = sorted(map(_delivery, found), key=lambda d: (d.due_at, d.id))
            (due,) = cursor.execute(
                "SELECT min(due_at) FROM outbox WHERE state = 'pending' AND leased = 0"
                " AND output = ANY(%s)",
                ([output for output, _ in wanted],),
            ).fetchone() or (None,)
        return DeliveryRound(leased, _at(due) if due is not None else None)

    def release_deliveries(self, output: str) -> int:
        """Lift this member's leases (and ones from before leases had holders)."""
        return self._transaction(
            "UPDATE outbox SET leased = 0 WHERE output = ? AND leased = 1"
            " AND (leased_by = ? OR leased_by IS NULL)",
            [(output, self.member)],
        )
